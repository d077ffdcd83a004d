"""What the HTTP layer costs, each figure beside its baseline in the same run.

    .venv/bin/python bench/web.py [--requests 2000] [--concurrency 8]

check
    ``POST /api/v1/notes/check`` through the whole app (bearer JWT verified, middlewares, request
    ids, JSON logs off, pydantic parsing, the policy) over loopback HTTP, beside calling the same
    service's ``check_note`` directly in-process with the parsed note (the baseline: no HTTP,
    no auth, no parsing). Ratio = direct / HTTP throughput: what one API call costs in service calls.
inbox
    ``GET /inbox``, the workspace's first screen, signed in with the page's cookie, with 500
    referrals in the inbox (paged: the first 20, open first): p50 and p95 of sequential requests
    (the issue's target: p95 <= 150 ms), beside the bare loopback round trip; and a search by
    name (the store pre-filters the referrals' JSON text by the longest word, the page makes it
    exact on the name).
health
    ``GET /health`` through the app (middlewares, and readiness probing the store) beside a bare
    aiohttp handler answering the same JSON on the same kind of server. Ratio = app / bare. The
    bare round trip is also the ceiling for ``check``: ratio check / bare.

Everything runs on 127.0.0.1 with a bounded number of requests; the store is a throwaway SQLite
file and the EHR endpoint is never contacted (checking a note does not send it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.config import Settings, settings_from_dict
from bridge.domain import PeerNote, Role, parse
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService, running_exchange
from bridge.web.app import create_app
from bridge.web.keys import EXCHANGE
from bridge_dev.demo import IdentityProvider, make_people, rules_dir
from bridge_dev.sandbox import free_port
from bridge_dev.stack import bridge_config


async def _rate(n: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> float:
    """Requests per second for ``n`` calls of ``one`` with ``concurrency`` in flight."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def _latencies(n: int, one: Callable[[], Awaitable[Any]]) -> list[float]:
    """Milliseconds of ``n`` sequential calls of ``one``, sorted."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await one()
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def _pct(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p))]


async def _fill_inbox(exchange: ExchangeService, n: int) -> None:
    """``n`` referrals as the inbound sync would have stored them (no EHR contacted)."""
    from datetime import UTC, datetime, timedelta

    from bridge.domain import HumanName, ReferralContact, ReferralStatus
    from bridge_dev import samples

    now = datetime.now(UTC)
    statuses = [ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED, ReferralStatus.COMPLETED]
    for i in range(n):
        ref = samples.referral(
            f"bench-ref-{i:04d}",
            task_id=f"task-{i}",
            service_request_id=f"sr-{i}",
            status=statuses[i % 3],
            authored_on=now - timedelta(hours=i),
            due=now + timedelta(days=i % 9),
            contact=ReferralContact(name=HumanName(given=f"Person{i}", family="Bench")),
        )
        await exchange.store.inbox.upsert(ref, now=now - timedelta(minutes=i))


async def main(requests: int, concurrency: int) -> None:
    logging.getLogger("bridge").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    idp = IdentityProvider(work)
    from datetime import UTC, datetime

    people = make_people("bench", datetime.now(UTC))
    cfg = bridge_config(
        "http://127.0.0.1:9/fhir",
        store_url=f"sqlite+aiosqlite:///{work / 'bridge.db'}",
        endpoint={"subscribe": False},
        rules={"dir": str(rules_dir())},
        api_auth={
            "issuer": "https://idp.harbor-recovery.example.org",
            "audience": "peer-bridge",
            "jwks_file": str(idp.jwks_file),
        },
    )
    settings = settings_from_dict(cfg)
    directory = InMemoryDirectory([people.participant], [people.peer, people.supervisor], [people.consent])

    def factory(s: Settings) -> contextlib.AbstractAsyncContextManager[ExchangeService]:
        return running_exchange(s, directory=directory, start_workers=False)

    app = create_app(settings, exchange_factory=factory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    async def bare_health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "checks": {}})

    bare = web.Application()
    bare.router.add_get("/health", bare_health)
    bare_runner = web.AppRunner(bare, access_log=None)
    await bare_runner.setup()
    bare_port = free_port()
    await web.TCPSite(bare_runner, "127.0.0.1", bare_port).start()

    token = idp.token(role=Role.PEER_SPECIALIST, practitioner_id=people.peer.id)
    note = {
        "id": "note-bench",
        "participant_id": people.participant.id,
        "author_id": people.peer.id,
        "audience": "care-team",
        "text": "Worked on the housing application together; she will call the benefits office Monday.",
        "written_at": "2026-03-02T15:00:00-06:00",
        "summary": "Recovery coaching",
        "goal": "Stable housing",
        "progress": "Application done",
    }
    body = json.dumps(note).encode()
    parsed = parse(PeerNote, note)
    actor = Actor(f"practitioner:{people.peer.id}", Role.PEER_SPECIALIST.value, "harbor-recovery")
    exchange = app[EXCHANGE]
    limits = httpx.Limits(max_connections=concurrency)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as api:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

            async def via_http() -> None:
                r = await api.post("/api/v1/notes/check", content=body, headers=headers)
                assert r.status_code == 200, r.text

            async def direct() -> None:
                await exchange.submissions.check_note(parsed, actor=actor)

            await _rate(50, concurrency, via_http)  # warm-up: connections, rule caches
            http_rate = await _rate(requests, concurrency, via_http)
            direct_rate = await _rate(requests, concurrency, direct)
            print(
                f"check   HTTP {http_rate:8.0f} req/s   direct {direct_rate:8.0f} calls/s   "
                f"ratio direct/HTTP {direct_rate / http_rate:5.2f}"
            )

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bare_port}", limits=limits) as plain:

            async def bare_call() -> None:
                assert (await plain.get("/health")).status_code == 200

            await _rate(50, concurrency, bare_call)
            bare_rate = await _rate(requests, concurrency, bare_call)
            bare_ms = await _latencies(200, bare_call)

        await _fill_inbox(exchange, 500)
        cookie = {"bridge_session": f"jwt:{token}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", cookies=cookie) as browser:

            async def first_screen() -> None:
                r = await browser.get("/inbox")
                assert r.status_code == 200 and "page 1 of" in r.text, r.status_code

            async def search() -> None:
                r = await browser.get("/inbox", params={"q": "person42", "show": "all"})
                assert r.status_code == 200 and "Person42 Bench" in r.text, r.status_code

            await _latencies(20, first_screen)  # warm-up: templates, connections
            inbox_ms = await _latencies(200, first_screen)
            search_ms = await _latencies(50, search)
        print(
            f"inbox   500 referrals, first screen (20, paged): p50 {_pct(inbox_ms, 0.5):6.1f} ms   "
            f"p95 {_pct(inbox_ms, 0.95):6.1f} ms (target <= 150)   "
            f"ratio p95 inbox/bare round trip {_pct(inbox_ms, 0.95) / _pct(bare_ms, 0.95):5.1f}"
        )
        print(
            f"inbox   500 referrals, search by name (store pre-filter): p50 {_pct(search_ms, 0.5):6.1f} ms   "
            f"p95 {_pct(search_ms, 0.95):6.1f} ms   ratio p95 search/first screen "
            f"{_pct(search_ms, 0.95) / _pct(inbox_ms, 0.95):5.1f}"
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as api:

            async def app_health2() -> None:
                assert (await api.get("/health")).status_code == 200

            app_rate = await _rate(requests, concurrency, app_health2)
        print(
            f"health  app  {app_rate:8.0f} req/s   bare   {bare_rate:8.0f} req/s    "
            f"ratio app/bare   {app_rate / bare_rate:5.2f}  (readiness probes the store)"
        )
        print(
            f"check   HTTP {http_rate:8.0f} req/s   bare   {bare_rate:8.0f} req/s    "
            f"ratio check/bare {http_rate / bare_rate:5.2f}  (bare = the loopback round trip alone)"
        )
    finally:
        await runner.cleanup()
        await bare_runner.cleanup()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=8)
    a = p.parse_args()
    asyncio.run(main(a.requests, a.concurrency))
