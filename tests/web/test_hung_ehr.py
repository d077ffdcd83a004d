"""Issue 14: a hung EHR went unnoticed (read time-outs left readiness ok, the breaker gauge without
samples and the delivery metrics at ``outcome="ok"``). Here the EHR is the real sandbox behind a
loopback server that forwards until it is frozen, then takes requests and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page, expect

from bridge.config import settings_from_dict
from bridge.exchange.wiring import ExchangeService, running_exchange
from bridge.web import create_app
from bridge.web.auth import Authenticator
from bridge_dev.sandbox import Sandbox
from tests.web import payloads
from tests.web.conftest import API_KEYS, CHROMIUM, TokenFactory, directory, settings_dict
from tests.web.freezable import FreezableEhr


@pytest.fixture
async def hung_stack(
    sandbox_ehr: Sandbox, tmp_path: Path, env: None, jwks: dict[str, Any]
) -> AsyncIterator[tuple[TestClient[Any, Any], FreezableEhr, ExchangeService]]:
    ehr = FreezableEhr(sandbox_ehr.root_url)
    base = await ehr.start()
    cfg = settings_dict(base, tmp_path / "bridge.db")
    # a short time-out, a breaker that opens after two and half-opens again a second later: the
    # trial then hangs too, so readiness must stay "not ready" through the half-open state
    cfg["endpoints"]["clinic"].update(
        timeout_seconds=0.5, breaker_failures=2, breaker_reset_seconds=1, retry_max_seconds=2
    )
    settings = settings_from_dict(cfg)
    opened: list[ExchangeService] = []

    @contextlib.asynccontextmanager
    async def exchange(s: Any) -> AsyncIterator[ExchangeService]:
        async with running_exchange(s, directory=directory(), start_workers=True) as ex:
            opened.append(ex)
            yield ex

    app = create_app(
        settings, exchange_factory=exchange, authenticator=Authenticator.from_settings(settings, jwks=jwks)
    )
    try:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            yield client, ehr, opened[0]
    finally:
        await ehr.close()


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of the first sample of ``name`` carrying all ``labels`` (NaN when none does)."""
    for line in metrics.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items()):
            return float(m.group(3))
    return float("nan")


async def eventually(check: Any, within: float = 60.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return bool(await check())


async def test_a_hung_ehr_makes_the_bridge_not_ready_and_shows_in_metrics(
    hung_stack: tuple[TestClient[Any, Any], FreezableEhr, ExchangeService], make_token: TokenFactory
) -> None:
    client, ehr, _exchange = hung_stack
    assert (await client.get("/health/ready")).status == 200

    ehr.freeze()
    peer = {"Authorization": f"Bearer {make_token()}"}
    resp = await client.post("/api/v1/encounters", json=payloads.encounter(billable=False), headers=peer)
    assert resp.status == 202, await resp.text()

    async def not_ready() -> bool:
        return (await client.get("/health/ready")).status == 503

    assert await eventually(not_ready)
    body = await (await client.get("/health/ready")).json()
    assert body["checks"]["endpoint:clinic"]["ok"] is False
    assert body["checks"]["endpoint:clinic"]["detail"].startswith("circuit")

    # still hung a while later, the breaker half-open for its trial: still not ready
    await asyncio.sleep(1.5)
    assert (await client.get("/health/ready")).status == 503

    async def delivery_failed() -> bool:
        text = await (await client.get("/metrics")).text()
        # the attempt ends in a time-out, or in our breaker's refusal once the time-outs opened it
        return any(
            _sample(text, "bridge_deliveries_total", endpoint="clinic", outcome=o) >= 1
            for o in ("timeout", "retry")
        )

    assert await eventually(delivery_failed)
    resp = await client.get("/metrics")
    assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = await resp.text()
    # every request that got no answer in time, by endpoint
    assert _sample(text, "bridge_delivery_seconds_count", endpoint="clinic", outcome="timeout") >= 2
    assert _sample(text, "bridge_endpoint_breaker_open", endpoint="clinic") == 1
    assert _sample(text, "bridge_endpoint_consecutive_failures", endpoint="clinic") >= 2
    assert _sample(text, "bridge_outbox_oldest_pending_seconds", endpoint="clinic") > 0
    assert "process_cpu_seconds_total" in text and "python_gc_objects_collected_total" in text

    ehr.thaw()  # the EHR answers again: the breaker's next trial closes it and readiness returns

    async def ready() -> bool:
        return (await client.get("/health/ready")).status == 200

    assert await eventually(ready)


@pytest.mark.browser
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
    reason="Debian chromium is not installed (make test installs it)",
)
async def test_the_operations_page_shows_the_hung_endpoint(
    hung_stack: tuple[TestClient[Any, Any], FreezableEhr, ExchangeService],
    make_token: TokenFactory,
    browser_page: Page,
) -> None:
    client, ehr, _exchange = hung_stack
    url = str(client.make_url("")).rstrip("/")
    page = browser_page
    await page.goto(f"{url}/ops")
    await page.get_by_label("Operator API key").fill(API_KEYS["ops"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#endpoint-clinic-status")).to_have_text("ok")
    await expect(page.locator("#endpoint-clinic-backlog")).to_contain_text("0 waiting")

    ehr.freeze()
    peer = {"Authorization": f"Bearer {make_token()}"}
    resp = await client.post("/api/v1/encounters", json=payloads.encounter(billable=False), headers=peer)
    assert resp.status == 202

    async def down() -> bool:
        await page.reload()
        return await page.locator("#endpoint-clinic-status").inner_text() == "down"

    assert await eventually(down)
    await expect(page.locator("#endpoint-clinic-breaker")).to_contain_text("consecutive failures")
    await expect(page.locator("#endpoint-clinic-backlog")).to_contain_text("1 waiting, oldest")
