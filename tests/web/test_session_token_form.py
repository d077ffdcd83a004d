"""Without an identity provider the inbox keeps its token form, but the browser no longer carries
the credential: it gets a random session id, and the session lives in the store."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bridge.web.csrf import form_token
from tests.web.conftest import TokenFactory

Client = TestClient[Any, Any]


def _only(client: Client, sid: str) -> None:
    """The browser holds this session id and nothing else."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"bridge_session": sid}, client.make_url("/"))


def _cookie(client: Client) -> str | None:
    jar = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    return jar["bridge_session"].value if "bridge_session" in jar else None


async def test_the_cookie_is_a_session_id_not_the_token(client: Client, make_token: TokenFactory) -> None:
    token = make_token()
    resp = await client.post("/inbox/login", data={"credential": token}, allow_redirects=False)
    assert resp.status == 303
    sid = _cookie(client)
    assert sid and token not in sid and "." not in sid and ":" not in sid
    assert (await client.get("/inbox")).status == 200

    # a second sign-in in the same browser rotates the id; the old one is gone
    resp = await client.post("/inbox/login", data={"credential": token}, allow_redirects=False)
    new = _cookie(client)
    assert new and new != sid
    _only(client, sid)
    assert (await client.get("/inbox")).status == 401

    # sign-out deletes the session: the id is worth nothing afterwards
    _only(client, new)
    resp = await client.post("/inbox/logout", data={"csrf_token": form_token(new)}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/inbox"  # no provider to sign out at
    _only(client, new)
    assert (await client.get("/inbox")).status == 401


async def test_a_session_cookie_is_not_an_api_credential_without_the_header(
    client: Client, make_token: TokenFactory
) -> None:
    await client.post("/inbox/login", data={"credential": make_token()}, allow_redirects=False)
    assert (await client.get("/api/v1/referrals")).status == 401
    assert (await client.get("/api/v1/referrals", headers={"X-Bridge-Inbox": "1"})).status == 200
