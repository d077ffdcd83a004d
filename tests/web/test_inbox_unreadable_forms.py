"""Inbox form posts that cannot be decoded answer 400 ``malformed_form``, not a 500."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.web.conftest import TokenFactory

Client = TestClient[Any, Any]
UNREADABLE = [
    "application/x-www-form-urlencoded; charset=bogus",  # LookupError
    "multipart/form-data; boundary=zz",  # the body has no such boundary: ValueError
    "multipart/form-data",  # no boundary at all
]


@pytest.mark.parametrize("content_type", UNREADABLE)
async def test_sign_in_form_that_cannot_be_read(client: Client, content_type: str) -> None:
    resp = await client.post("/inbox/login", data=b"credential=abc", headers={"Content-Type": content_type})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == "malformed_form"


@pytest.mark.parametrize("content_type", UNREADABLE)
@pytest.mark.parametrize("path", ["/inbox/notes", "/inbox/encounters", "/inbox/referrals/r-1/accept"])
async def test_signed_in_forms_that_cannot_be_read(
    client: Client, make_token: TokenFactory, content_type: str, path: str
) -> None:
    signed_in = await client.post("/inbox/login", data={"credential": make_token()}, allow_redirects=False)
    assert signed_in.status == 303 and "bridge_session" in signed_in.cookies
    resp = await client.post(path, data=b"text=hello", headers={"Content-Type": content_type})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == "malformed_form"
