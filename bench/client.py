"""Conditional creates per second against the sandbox EHR: the bridge's client vs fhirpy vs raw httpx.

    .venv/bin/python bench/client.py [--n 300] [--concurrency 1 8 32] [--repeat 3]

Each round sends ``n`` conditional creates (``If-None-Exist`` on a fresh identifier, so every one is
a 201) at a given concurrency, with three clients doing the same work in the same run:

- raw httpx: one ``httpx.AsyncClient``, no parsing, no retries, no limits (the baseline);
- raw aiohttp: one ``aiohttp.ClientSession`` (its own connection pool), no parsing, no retries;
- bridge: ``AsyncFhirClient.create_if_none_exist`` (retry policy, breaker, concurrency slots, status
  mapping) on its default transport (aiohttp's pool under httpx, ``bridge/clients/transport.py``);
- bridge, default 8 slots: the same with ``max_concurrency`` left at its default (8), so callers
  beyond 8 queue for a slot, as the outbox workers do in production;
- bridge on httpx's own pool: the same client on ``httpx.AsyncHTTPTransport`` (what it used
  before issue 15), the before figure in the same run;
- fhirpy: ``AsyncFHIRClient.resource(...).create(identifier=...)`` (opens a session per request).

Every round checks afterwards that the server holds exactly ``n`` resources tagged with that round.

Each cell is the median of ``--repeat`` rounds with the clients' order rotated between rounds.
Ratios are against raw httpx in the same run. The sandbox runs on the same two cores, so absolute
numbers mostly measure it; ratios are the point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from fhirpy import AsyncFHIRClient

from bridge.clients import AsyncFhirClient
from bridge_dev.sandbox import sandbox

SYSTEM = "urn:uuid:0d5b7e7c-bench-client"
Create = Callable[[dict[str, Any], str], Awaitable[None]]


def _patient(value: str, run: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"tag": [{"system": SYSTEM, "code": run}]},
        "identifier": [{"system": SYSTEM, "value": value}],
        "gender": "unknown",
    }


async def _count(base: str, run: str) -> int:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{base}/Patient", params={"_tag": f"{SYSTEM}|{run}", "_summary": "count"})
        return int(r.json()["total"])


async def _drive(create: Create, n: int, concurrency: int, base: str) -> float:
    """Creates per second for ``n`` fresh conditional creates by ``concurrency`` workers.

    Afterwards the server must hold exactly ``n`` resources tagged with this run: same work for all.
    """
    run = uuid.uuid4().hex[:12]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            value = f"{run}-{i}"
            await create(_patient(value, run), f"identifier={SYSTEM}|{value}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = n / (time.perf_counter() - start)
    stored = await _count(base, run)
    assert stored == n, f"expected {n} resources on the server, found {stored}"
    return rate


async def raw_httpx(base: str, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:

        async def create(resource: dict[str, Any], query: str) -> None:
            r = await http.post(
                f"{base}/Patient",
                content=json.dumps(resource).encode(),
                headers={"Content-Type": "application/fhir+json", "If-None-Exist": query},
            )
            assert r.status_code == 201, r.status_code

        return await _drive(create, n, concurrency, base)


async def raw_aiohttp(base: str, n: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency + 2)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def create(resource: dict[str, Any], query: str) -> None:
            async with http.post(
                f"{base}/Patient",
                data=json.dumps(resource).encode(),
                headers={"Content-Type": "application/fhir+json", "If-None-Exist": query},
            ) as r:
                await r.read()
                assert r.status == 201, r.status

        return await _drive(create, n, concurrency, base)


async def bridge_client(base: str, n: int, concurrency: int) -> float:
    async with AsyncFhirClient(base, max_concurrency=concurrency, timeout=60) as ehr:

        async def create(resource: dict[str, Any], query: str) -> None:
            result = await ehr.create_if_none_exist(resource, query)
            assert result.created

        return await _drive(create, n, concurrency, base)


async def bridge_default_slots(base: str, n: int, concurrency: int) -> float:
    """The bridge as configured by default: callers beyond 8 wait for a slot (max_concurrency = 8)."""
    async with AsyncFhirClient(base, timeout=60) as ehr:

        async def create(resource: dict[str, Any], query: str) -> None:
            result = await ehr.create_if_none_exist(resource, query)
            assert result.created

        return await _drive(create, n, concurrency, base)


async def bridge_httpx_pool(base: str, n: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    async with AsyncFhirClient(base, max_concurrency=concurrency, timeout=60, transport=transport) as ehr:

        async def create(resource: dict[str, Any], query: str) -> None:
            result = await ehr.create_if_none_exist(resource, query)
            assert result.created

        return await _drive(create, n, concurrency, base)


async def fhirpy_client(base: str, n: int, concurrency: int) -> float:
    client = AsyncFHIRClient(base)

    async def create(resource: dict[str, Any], query: str) -> None:
        body = {k: v for k, v in resource.items() if k != "resourceType"}
        value = query.split("=", 1)[1]
        await client.resource("Patient", **body).create(identifier=value)

    return await _drive(create, n, concurrency, base)


IMPLS: dict[str, Callable[[str, int, int], Awaitable[float]]] = {
    "raw httpx": raw_httpx,
    "raw aiohttp": raw_aiohttp,
    "bridge AsyncFhirClient": bridge_client,
    "bridge, default 8 slots": bridge_default_slots,
    "bridge on httpx's pool": bridge_httpx_pool,
    "fhirpy AsyncFHIRClient": fhirpy_client,
}


async def bench(base: str, n: int, levels: list[int], repeat: int) -> dict[int, dict[str, float]]:
    """Median rate per (concurrency, client) over ``repeat`` rounds, the clients' order rotated."""
    await raw_httpx(base, 50, 4)  # warm the server's caches and SQLite pages
    names = list(IMPLS)
    results: dict[int, dict[str, float]] = {}
    for concurrency in levels:
        rates: dict[str, list[float]] = {name: [] for name in names}
        for r in range(repeat):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                rates[name].append(await IMPLS[name](base, n, concurrency))
        results[concurrency] = {name: statistics.median(rates[name]) for name in names}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=300, help="conditional creates per round (default 300)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per cell; the median is shown")
    args = parser.parse_args()
    with sandbox() as ehr:
        results = asyncio.run(bench(ehr.base_url, args.n, args.concurrency, args.repeat))
    print(
        f"conditional creates/s against the sandbox EHR, {args.n} per round, median of {args.repeat} "
        "(ratio vs raw httpx)"
    )
    print(f"{'concurrency':>11}  " + "  ".join(f"{name:>24}" for name in IMPLS))
    for concurrency, row in results.items():
        base = row["raw httpx"]
        cells = [f"{rate:8.1f} /s ({rate / base:4.2f}x)" for rate in row.values()]
        print(f"{concurrency:>11}  " + "  ".join(f"{c:>24}" for c in cells))
    for concurrency, row in results.items():
        bridge, fhirpy, before = (
            row["bridge AsyncFhirClient"],
            row["fhirpy AsyncFHIRClient"],
            row["bridge on httpx's pool"],
        )
        print(
            f"concurrency {concurrency}: bridge / raw httpx {bridge / row['raw httpx']:.2f}x, "
            f"/ fhirpy {bridge / fhirpy:.2f}x, / raw aiohttp {bridge / row['raw aiohttp']:.2f}x "
            f"(on httpx's pool, before: / raw httpx {before / row['raw httpx']:.2f}x, "
            f"/ fhirpy {before / fhirpy:.2f}x)"
        )


if __name__ == "__main__":
    main()
