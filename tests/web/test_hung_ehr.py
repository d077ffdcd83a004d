"""Issue 14: a hung EHR went unnoticed (read time-outs left readiness ok, the breaker gauge without
samples and the delivery metrics at ``outcome="ok"``). Here the EHR is the real sandbox behind a
loopback server that forwards until it is frozen, then takes requests and never answers."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import settings_from_dict
from bridge.exchange.wiring import ExchangeService, running_exchange
from bridge.web import create_app
from bridge.web.auth import Authenticator
from bridge_dev.sandbox import Sandbox
from tests.web import payloads
from tests.web.conftest import TokenFactory, directory, settings_dict


class FreezableEhr:
    """A loopback reverse proxy to the sandbox EHR; ``freeze()`` makes it stop answering (the
    connection stays open, no status line ever comes), ``thaw()`` lets requests through again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.frozen = asyncio.Event()
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.hung = 0
        self._http = httpx.AsyncClient(timeout=30)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.frozen.is_set():
            self.hung += 1
            await self.thawed.wait()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        resp = await self._http.request(
            request.method, f"{self.upstream}{request.path_qs}", content=body, headers=headers
        )
        text = resp.content.replace(self.upstream.encode(), f"http://127.0.0.1:{self.port}".encode())
        keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "location", "etag")}
        return web.Response(status=resp.status_code, body=text, headers=keep)

    def freeze(self) -> None:
        self.thawed.clear()
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()
        self.thawed.set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}/fhir"

    async def close(self) -> None:
        self.thaw()
        if self._runner is not None:
            await self._runner.cleanup()
        await self._http.aclose()


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
