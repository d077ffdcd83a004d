"""/metrics while the store cannot be read: no stale outbox gauges passed off as current."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.errors import StoreError
from bridge.exchange.wiring import ExchangeService
from tests.web import payloads
from tests.web.conftest import TokenFactory, bearer

Client = TestClient[Any, Any]
QUEUED = 'bridge_outbox_items{endpoint="clinic",state="queued"}'


async def test_outbox_gauges_vanish_and_say_so_while_the_store_is_down(
    client: Client, exchange: ExchangeService, make_token: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.post("/api/v1/encounters", json=payloads.encounter(), headers=bearer(make_token()))
    text = await (await client.get("/metrics")).text()
    # this session and the two the notes document
    assert f"{QUEUED} 3.0" in text and "bridge_outbox_counts_available 1.0" in text

    async def down(**_: Any) -> Any:
        raise StoreError("store unreachable: Connection refused")

    monkeypatch.setattr(exchange.store.outbox, "counts", down)
    resp = await client.get("/metrics")
    assert resp.status == 200  # a scrape still answers: the HTTP series are worth having
    text = await resp.text()
    # the last snapshot used to stay, so a dashboard showed yesterday's backlog as today's
    assert QUEUED not in text
    assert "bridge_outbox_counts_available 0.0" in text
