"""Sign-in by OpenID Connect over real HTTP on loopback: the bridge (real exchange, SQLite) as the
client of a real OpenID Provider (npm oidc-provider, ``dev/idp``). The attacks come first: each
is refused with no session set, and the happy path shows what a session is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import update

from bridge.config import settings_from_dict
from bridge.store.schema import web_sessions
from bridge.store.sessions import digest
from bridge.web.csrf import form_token
from bridge_dev.idp import IdentityProvider
from bridge_dev.sandbox import Sandbox, free_port
from tests.web import payloads
from tests.web.conftest import OIDC_CLIENT_SECRET, SigninBridge, open_app, signin_settings_dict
from tests.web.signin import authorize, sign_in_http, through_provider

SESSION = "bridge_session"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def _session(http: httpx.AsyncClient) -> str | None:
    return next((c.value for c in http.cookies.jar if c.name == SESSION), None)


async def _whoami(http: httpx.AsyncClient, bridge: SigninBridge) -> int:
    """Status of a supervisor-only API call made with the browser's session (403 for a peer)."""
    resp = await http.get(f"{bridge.url}/api/v1/notes/held", headers={"X-Bridge-Inbox": "1"})
    return resp.status_code


async def _inbox(http: httpx.AsyncClient, bridge: SigninBridge) -> httpx.Response:
    return await http.get(f"{bridge.url}/inbox", follow_redirects=False)


# --- attacks --------------------------------------------------------------------------------------


async def test_a_changed_state_is_refused(http: httpx.AsyncClient, signin_bridge: SigninBridge) -> None:
    callback = await authorize(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    resp = await http.get(_with_query(callback, state="forged-state"), follow_redirects=False)
    assert resp.status_code == 401 and "unknown, used or expired" in resp.text
    assert _session(http) is None
    # and the real state is not spent by the forgery: the sign-in still completes
    assert (await http.get(callback, follow_redirects=False)).status_code == 200
    assert _session(http) is not None


async def test_a_callback_works_once(http: httpx.AsyncClient, signin_bridge: SigninBridge) -> None:
    callback = await authorize(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    assert (await http.get(callback, follow_redirects=False)).status_code == 200
    first = _session(http)
    replay = await http.get(callback, follow_redirects=False)  # state (and code) replayed
    assert replay.status_code == 401 and "unknown, used or expired" in replay.text
    assert _session(http) == first  # nothing new issued


async def test_a_code_is_redeemed_once_even_under_a_fresh_state(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """Code reuse: the code of a finished sign-in delivered with the state of a new one (same
    browser). The provider refuses the code (used, and the new PKCE verifier does not match it)."""
    callback = await authorize(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    assert (await http.get(callback, follow_redirects=False)).status_code == 200
    first = _session(http)
    started = await http.get(f"{signin_bridge.url}/inbox/signin", follow_redirects=False)
    fresh_state = dict(parse_qsl(urlsplit(started.headers["Location"]).query))["state"]
    resp = await http.get(_with_query(callback, state=fresh_state), follow_redirects=False)
    assert resp.status_code == 401 and "refused the code" in resp.text
    assert _session(http) == first


async def test_a_code_from_another_sign_in_does_not_fit(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """Code injection: the supervisor's code and state, delivered under a sign-in the peer started
    (same browser, other state). PKCE binds the code to its own verifier: refused."""
    sup_callback = await authorize(http, signin_bridge.url, signin_bridge.idp.account("supervisor"))
    started = await http.get(f"{signin_bridge.url}/inbox/signin", follow_redirects=False)
    other_state = dict(parse_qsl(urlsplit(started.headers["Location"]).query))["state"]
    resp = await http.get(_with_query(sup_callback, state=other_state), follow_redirects=False)
    assert resp.status_code == 401
    assert _session(http) is None


async def test_a_sign_in_finished_in_another_browser_is_refused(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """Login CSRF: an attacker signs in as themselves up to the redirect back and sends the victim
    the callback URL. The victim's browser did not start that sign-in: no session (and the attacker
    is not signed in to the victim's browser)."""
    callback = await authorize(http, signin_bridge.url, signin_bridge.idp.account("supervisor"))
    async with httpx.AsyncClient(timeout=30) as victim:
        resp = await victim.get(callback, follow_redirects=False)
        assert resp.status_code == 401 and "another browser" in resp.text
        assert _session(victim) is None


async def test_the_session_id_changes_at_sign_in_and_a_planted_one_is_dropped(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """Session fixation: the attacker signs in, then plants their own session id in the victim's
    browser. When the victim signs in, the id is new, and the planted one signs nobody in."""
    async with httpx.AsyncClient(timeout=30) as attacker:
        await sign_in_http(attacker, signin_bridge.url, signin_bridge.idp.account("peer"))
        planted = _session(attacker)
    assert planted
    http.cookies.set(SESSION, planted, domain="127.0.0.1", path="/")
    await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("supervisor"))
    mine = _session(http)
    assert mine and mine != planted
    assert await _whoami(http, signin_bridge) == 200  # the victim is themselves (a supervisor)
    async with httpx.AsyncClient(timeout=30, cookies={SESSION: planted}) as replay:
        assert (await _inbox(replay, signin_bridge)).status_code == 401  # the planted session is gone


async def test_identity_in_the_request_is_ignored(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """Claims added to the callback (or posted to it) change nothing: the ID token says who it is."""
    callback = await authorize(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    forged = _with_query(callback, role="peer-supervisor", practitioner_id="sup-1", sub="sup-1")
    assert (await http.post(forged, data={"role": "peer-supervisor"})).status_code == 405
    assert (await http.get(forged, follow_redirects=False)).status_code == 200
    assert await _whoami(http, signin_bridge) == 403  # a peer: no supervision queue
    page = (await _inbox(http, signin_bridge)).text
    assert 'id="held-h"' not in page


async def test_a_provisional_peer_is_still_provisional(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """The provisional peer signed in at the provider: their note waits for a supervisor's co-sign
    (the directory decides the certification, not a claim)."""
    await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("provisional"))
    resp = await http.post(
        f"{signin_bridge.url}/api/v1/notes",
        json=payloads.provisional_note("We worked on her housing application."),
        headers={"X-Bridge-Inbox": "1"},
    )
    assert resp.status_code == 202 and resp.json()["state"] == "held", resp.text
    assert any(r["rule"].startswith("supervision.") for r in resp.json()["hold_reasons"]), resp.text


async def test_an_expired_or_idle_session_signs_nobody_in(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    sid = _session(http)
    assert sid and (await _inbox(http, signin_bridge)).status_code == 200
    db = signin_bridge.exchange.store.db
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with db.tx() as conn:
        await conn.execute(
            update(web_sessions).where(web_sessions.c.id_hash == digest(sid)).values(expires_at=past)
        )
    resp = await _inbox(http, signin_bridge)
    assert resp.status_code == 401 and 'id="sign-in"' in resp.text

    await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    sid = _session(http)
    assert sid and (await _inbox(http, signin_bridge)).status_code == 200
    idle_since = datetime.now(UTC) - timedelta(minutes=31)  # the default idle timeout is 30 minutes
    async with db.tx() as conn:
        await conn.execute(
            update(web_sessions).where(web_sessions.c.id_hash == digest(sid)).values(last_seen_at=idle_since)
        )
    assert (await _inbox(http, signin_bridge)).status_code == 401


async def test_a_wrong_password_gets_no_code(http: httpx.AsyncClient, signin_bridge: SigninBridge) -> None:
    assert await authorize(http, signin_bridge.url, signin_bridge.idp.account("peer"), password="guess") == ""


async def test_the_token_form_is_off_with_a_provider(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    resp = await http.post(f"{signin_bridge.url}/inbox/login", data={"credential": "x.y.z"})
    assert resp.status_code in (403, 404)  # no token form: the origin check or the missing route
    page = await _inbox(http, signin_bridge)
    assert page.status_code == 401 and 'href="/inbox/signin"' in page.text and "credential" not in page.text


# --- what a session is -----------------------------------------------------------------------------


async def test_sign_in_sets_a_server_side_session(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    resp = await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    assert resp.status_code == 200 and 'url=/inbox"' in resp.text  # a same-site step to the inbox
    cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith(f"{SESSION}="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    sid = _session(http)
    assert sid and len(sid) >= 40 and "." not in sid  # a random id, not a token
    record = await signin_bridge.exchange.store.sessions.get(
        sid, now=datetime.now(UTC), idle=timedelta(hours=1)
    )
    assert record is not None and record.practitioner_id == "peer-1" and record.via == "oidc"
    assert record.role == "peer-specialist"
    page = await _inbox(http, signin_bridge)
    assert page.status_code == 200 and 'id="referrals-h"' in page.text
    entries = await signin_bridge.exchange.store.audit.entries(subject="inbox")
    assert any(e.action == "session.signin" and e.actor == "practitioner:peer-1" for e in entries)


async def test_each_account_signs_in_as_itself(http: httpx.AsyncClient, signin_bridge: SigninBridge) -> None:
    expected = {"peer": 403, "provisional": 403, "supervisor": 200}
    for kind, status in expected.items():
        http.cookies.clear()
        await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account(kind))
        assert await _whoami(http, signin_bridge) == status, kind
    http.cookies.clear()
    await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("integrator"))
    page = await _inbox(http, signin_bridge)
    assert page.status_code == 403 and 'id="signed-in-as"' in page.text and "integrator" in page.text


async def test_sign_out_ends_the_session_and_the_providers(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    await sign_in_http(http, signin_bridge.url, signin_bridge.idp.account("peer"))
    sid = _session(http)
    assert sid
    resp = await http.post(
        f"{signin_bridge.url}/inbox/logout", data={"csrf_token": form_token(sid)}, follow_redirects=False
    )
    assert resp.status_code == 303
    end = resp.headers["Location"]
    assert end.startswith(f"{signin_bridge.idp.issuer}/session/end?")  # RP-initiated logout
    assert "post_logout_redirect_uri=" in end and "client_id=peer-bridge-inbox" in end
    assert _session(http) is None
    async with httpx.AsyncClient(timeout=30, cookies={SESSION: sid}) as copied:
        assert (await _inbox(copied, signin_bridge)).status_code == 401  # a copied cookie is worthless
    confirm = await http.get(end, follow_redirects=True)
    assert confirm.status_code == 200 and "Sign out" in confirm.text, confirm.text


async def test_an_address_that_keeps_failing_is_slowed_down(
    http: httpx.AsyncClient, signin_bridge: SigninBridge
) -> None:
    """Forged callbacks count as failed sign-ins: past the limit the address can neither finish
    nor start one (429 with Retry-After), like a guessing API client."""
    for i in range(100):
        resp = await http.get(f"{signin_bridge.url}/inbox/signin/callback?state=s{i}&code=c")
        assert resp.status_code == 401
    resp = await http.get(f"{signin_bridge.url}/inbox/signin/callback?state=s&code=c")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    started = await http.get(f"{signin_bridge.url}/inbox/signin", follow_redirects=False)
    assert started.status_code == 429 and "too many failed sign-ins" in started.text


async def test_the_session_cookie_is_secure_when_browsers_use_https(
    http: httpx.AsyncClient,
    env: None,
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    oidc_provider: IdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Behind a TLS proxy (``server.public_url`` is https) the session cookie is ``Secure``."""
    monkeypatch.setenv("BRIDGE_TEST_OIDC_SECRET", OIDC_CLIENT_SECRET)
    port = free_port()
    cfg = signin_settings_dict(
        sandbox_ehr.base_url,
        tmp_path / "bridge.db",
        oidc_provider,
        port,
        redirect_url=f"http://127.0.0.1:{port}/inbox/signin/callback",  # the test talks to it directly
    )
    cfg["server"]["public_url"] = "https://bridge.harbor.example"
    url = f"http://127.0.0.1:{port}"
    async for _client, _exchange in open_app(settings_from_dict(cfg), jwks, port=port):
        started = await http.get(f"{url}/inbox/signin", follow_redirects=False)
        assert "Secure" in started.headers["set-cookie"]
        callback = await through_provider(http, started.headers["Location"], oidc_provider.account("peer"))
        # the browser-binding cookie is Secure too, so this plain-HTTP client does not send it back:
        # present it by hand, as the browser would over TLS
        binding = started.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        resp = await http.get(
            callback, headers={"Cookie": f"bridge_signin={binding}"}, follow_redirects=False
        )
        assert resp.status_code == 200, resp.text
        cookie = next(h for h in resp.headers.get_list("set-cookie") if h.startswith(f"{SESSION}="))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
