"""`bridge serve` as a process: its memory with a backlog, and the submit latency under load.

    .venv/bin/python bench/serve.py [--mode memory] [--queued 10000 100000]
    .venv/bin/python bench/serve.py --mode latency [--rate 100] [--seconds 20]

memory
    RSS (``VmRSS``) and peak RSS (``VmHWM``) of ``bridge serve`` read from ``/proc/<pid>/status``
    with 0 items queued (the baseline, same run) and with each ``--queued`` count, written to the
    SQLite store before it starts. The EHR endpoint refuses connections, so the backlog stays
    queued while the worker claims, fails and backs off (issue 15: <= 150 MB at 10,000 and
    <= 250 MB at 100,000). Queued payloads must stay in the store, not in the process.
latency
    ``POST /api/v1/encounters`` at ``--rate`` submits per second (open loop: each request starts
    on its schedule whether or not the earlier ones were answered), each a new session, with the
    workers delivering to the EHR stand-in (``bench/standin.py``, answers at once) meanwhile:
    p50/p99/max latency (issue 15: p99 <= 25 ms at 100/s). Baseline in the same run: ``GET
    /health`` on the same server at the same rate (the HTTP round trip, auth-free).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bridge.domain import Role  # noqa: E402
from bridge.exchange.directory import InMemoryDirectory  # noqa: E402
from bridge.exchange.routing import partition_key  # noqa: E402
from bridge.store import open_store  # noqa: E402
from bridge.store.schema import outbox  # noqa: E402
from bridge_dev.demo import CENTRAL, IdentityProvider, make_people, rules_dir  # noqa: E402
from bridge_dev.sandbox import free_port  # noqa: E402
from bridge_dev.stack import bridge_config, to_toml  # noqa: E402

BRIDGE = Path(sys.executable).with_name("bridge")


def _config(work: Path, base_url: str, idp: IdentityProvider, port: int) -> Path:
    cfg = bridge_config(
        base_url,
        store_url=f"sqlite+aiosqlite:///{work / 'bridge.db'}",
        endpoint={"subscribe": False, "poll_interval_seconds": 3600},
        rules={"dir": str(rules_dir())},
        server={"host": "127.0.0.1", "port": port, "notification_token_env": "BENCH_NOTIFY_TOKEN"},
        api_auth={
            "issuer": "https://idp.harbor-recovery.example.org",
            "audience": "peer-bridge",
            "jwks_file": str(idp.jwks_file),
        },
    )
    path = work / "bridge.toml"
    path.write_text(to_toml(cfg))
    return path


def _people(work: Path) -> Any:
    people = make_people("bench", datetime.now(UTC))
    directory = InMemoryDirectory([people.participant], [people.peer, people.supervisor], [people.consent])
    (work / "directory.json").write_text(json.dumps(directory.to_dict()))
    return people


def _encounter(people: Any, k: int, start: datetime) -> dict[str, Any]:
    begin = start - timedelta(minutes=k)  # one-minute sessions, each its own minute
    return {
        "id": f"enc-bench-{k}",
        "participant_id": people.participant.id,
        "peer_id": people.peer.id,
        "start": begin.isoformat(),
        "end": (begin + timedelta(seconds=50)).isoformat(),
        "setting": "community",
        "location_name": "Harbor recovery center",
        "activities": ["recovery-coaching"],
    }


async def _fill(work: Path, people: Any, n: int) -> None:
    """``n`` queued sessions straight into the store (what ``n`` accepted submissions leave)."""
    store = await open_store(f"sqlite+aiosqlite:///{work / 'bridge.db'}")
    now = datetime.now(UTC)
    start = datetime.now(CENTRAL).replace(second=0, microsecond=0) - timedelta(days=1)
    key = partition_key(people.participant.id, "clinic")
    batch: list[dict[str, Any]] = []
    async with store.transaction() as conn:
        for k in range(n):
            enc = _encounter(people, k, start)
            batch.append(
                {
                    "id": f"sub-bench-{k}",
                    "kind": "encounter",
                    "endpoint": "clinic",
                    # a partition per 10 sessions: a backlog of many participants, as in a clinic
                    "partition_key": f"{key}-{k // 10}",
                    "item_key": enc["id"],
                    "payload": {"kind": "encounter", "encounter": enc},
                    "state": "queued",
                    "warnings": [],
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if len(batch) == 5000:
                await conn.execute(outbox.insert(), batch)
                batch = []
        if batch:
            await conn.execute(outbox.insert(), batch)
    await store.close()


def _status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in kB from ``/proc/<pid>/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0])
    return out


def _start(config: Path, work: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BENCH_NOTIFY_TOKEN": "bench-token"}
    proc = subprocess.Popen(
        [str(BRIDGE), "serve", "--config", str(config), "--directory", str(work / "directory.json")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "serve.log", "wb"),  # the child keeps it
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"bridge serve exited {proc.returncode}; see {work / 'serve.log'}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("bridge serve did not answer /health within 60 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory(args: argparse.Namespace) -> int:
    rows = []
    for n in [0, *args.queued]:
        work = Path(tempfile.mkdtemp(prefix=f"bench-serve-{n}-"))
        idp = IdentityProvider(work)
        people = _people(work)
        asyncio.run(_fill(work, people, n))
        port = free_port()
        config = _config(work, f"http://127.0.0.1:{free_port()}/fhir", idp, port)  # nobody listens
        proc = _start(config, work, port)
        try:
            time.sleep(args.settle)  # the worker claims, fails, backs off; the breaker opens
            mem = _status(proc.pid)
        finally:
            _stop(proc)
        rows.append((n, mem))
        print(
            f"queued={n:>7}  VmRSS={mem['VmRSS'] / 1024:6.1f} MB  VmHWM={mem['VmHWM'] / 1024:6.1f} MB",
            flush=True,
        )
    base = rows[0][1]["VmRSS"]
    for n, mem in rows[1:]:
        target = 150 if n <= 10_000 else 250
        print(
            f"queued={n}: RSS {mem['VmRSS'] / 1024:.1f} MB (peak {mem['VmHWM'] / 1024:.1f} MB), "
            f"{(mem['VmRSS'] - base) / 1024:+.1f} MB over the empty store; target <= {target} MB: "
            f"{'met' if mem['VmHWM'] / 1024 <= target else 'NOT met'}"
        )
    return 0


async def _paced(rate: float, count: int, one: Any) -> list[float]:
    """Open loop: request ``k`` starts at ``k / rate`` s; returns each request's latency (s)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    latencies: list[float] = []

    async def timed(k: int) -> None:
        await asyncio.sleep(max(0.0, t0 + k / rate - loop.time()))
        began = time.perf_counter()
        await one(k)
        latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(timed(k) for k in range(count)))
    return sorted(latencies)


def _summary(lat: list[float]) -> str:
    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

    return (
        f"p50 {q(0.50):6.1f} ms  p90 {q(0.90):6.1f} ms  p99 {q(0.99):6.1f} ms  max {lat[-1] * 1000:6.1f} ms"
    )


def latency(args: argparse.Namespace) -> int:
    from exchange import standin  # the EHR stand-in, as the share bench uses it

    work = Path(tempfile.mkdtemp(prefix="bench-serve-latency-"))
    idp = IdentityProvider(work)
    people = _people(work)
    asyncio.run(_fill(work, people, 0))
    port = free_port()
    count = int(args.rate * args.seconds)
    with standin() as ehr:
        proc = _start(_config(work, ehr.base_url, idp, port), work, port)
        try:
            token = idp.token(role=Role.PEER_SPECIALIST, practitioner_id=people.peer.id)
            start = datetime.now(CENTRAL).replace(second=0, microsecond=0) - timedelta(days=1)
            bodies = [json.dumps(_encounter(people, k, start)).encode() for k in range(count)]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

            async def run() -> tuple[list[float], list[float]]:
                # aiohttp as the load generator: httpx's own pool slows down with many connections
                # (the reason the bridge's client moved off it), which would be measured instead
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as api:
                    for _ in range(20):  # warm-up: connections, caches
                        async with api.get("/health") as r:
                            await r.read()

                    async def health(_: int) -> None:
                        async with api.get("/health") as r:
                            await r.read()
                            assert r.status == 200

                    async def submit(k: int) -> None:
                        async with api.post("/api/v1/encounters", data=bodies[k], headers=headers) as r:
                            text = await r.text()
                            assert r.status == 202, text

                    base = await _paced(args.rate, count, health)
                    subs = await _paced(args.rate, count, submit)
                    return base, subs

            base, subs = asyncio.run(run())
        finally:
            _stop(proc)
    print(
        f"{count} requests at {args.rate:.0f}/s each, open loop, sessions delivered to the stand-in meanwhile"
    )
    print(f"GET /health (baseline)     {_summary(base)}")
    print(f"POST /api/v1/encounters    {_summary(subs)}")
    p99 = subs[min(len(subs) - 1, int(0.99 * len(subs)))] * 1000
    print(f"submit p99 {p99:.1f} ms (target <= 25 ms: {'met' if p99 <= 25 else 'NOT met'})")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--mode", choices=["memory", "latency"], default="memory")
    p.add_argument("--queued", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--settle", type=float, default=10.0, help="memory: seconds of running before reading")
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    sys.path.insert(0, str(BENCH))
    return {"memory": memory, "latency": latency}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
