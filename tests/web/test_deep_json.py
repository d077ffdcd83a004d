"""Bodies the JSON parser cannot take (nested too deeply, an unknown charset) are malformed input
(400), not a crash (500)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.web.conftest import NOTIFY_TOKEN, TokenFactory, bearer

Client = TestClient[Any, Any]
DEEP = b"[" * 200_000 + b"]" * 200_000  # 400 KB: under the body limit, far past Python's recursion limit


@pytest.mark.parametrize("path", ["/api/v1/notes/check", "/api/v1/encounters", "/api/v1/notes"])
async def test_deeply_nested_body_is_a_400(client: Client, make_token: TokenFactory, path: str) -> None:
    headers = {**bearer(make_token()), "Content-Type": "application/json"}
    resp = await client.post(path, data=DEEP, headers=headers)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == "malformed_json"


async def test_deeply_nested_notification_is_a_400(client: Client) -> None:
    headers = {**bearer(NOTIFY_TOKEN), "Content-Type": "application/fhir+json"}
    resp = await client.post("/fhir/notify", data=DEEP, headers=headers)
    assert resp.status == 400, await resp.text()


@pytest.mark.parametrize("charset", ["bogus", "x-unknown-42"])
async def test_an_unknown_charset_is_a_400(client: Client, make_token: TokenFactory, charset: str) -> None:
    headers = {**bearer(make_token()), "Content-Type": f"application/json; charset={charset}"}
    resp = await client.post("/api/v1/notes/check", data=b'{"id": "n-1"}', headers=headers)
    assert resp.status == 400, await resp.text()  # was a 500 (LookupError decoding the body)
    assert (await resp.json())["code"] == "malformed_json"
