"""Query parameters a client can get wrong answer 422 naming the parameter, never a silent default."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.web.openapi import build_openapi
from bridge.web.routes import ROUTES
from tests.web.conftest import API_KEYS

Client = TestClient[Any, Any]
OPS = {"X-API-Key": API_KEYS["ops"]}


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "abc", "1.5", "99999999999999999999999", ""])
async def test_outbox_limit_out_of_range_is_refused(client: Client, limit: str) -> None:
    # it used to fall back to 100 quietly: asking for 5000 got 100 with no sign of the cut
    resp = await client.get("/api/v1/outbox", params={"limit": limit}, headers=OPS)
    assert resp.status == 422, await resp.text()
    body = await resp.json()
    assert body["code"] == "invalid_input" and body["field"] == "limit"


@pytest.mark.parametrize("limit", ["1", "1000"])
async def test_outbox_limit_in_range_is_taken(client: Client, limit: str) -> None:
    resp = await client.get("/api/v1/outbox", params={"limit": limit}, headers=OPS)
    assert resp.status == 200, await resp.text()


def test_the_refusal_is_documented() -> None:
    doc = build_openapi(ROUTES)
    assert "422" in doc["paths"]["/api/v1/outbox"]["get"]["responses"]
