"""Held notes pile up while supervisors catch up: do they slow the delivery workers down?

    .venv/bin/python bench/held.py [--held 20000] [--items 400] [--store sqlite|postgres]

Claims (``Outbox.claim``, one item at a time, then ``mark_delivered``) of ``--items`` queued items,
on a store with no held items (the baseline) and on the same kind of store with ``--held`` held
notes in it, each in a fresh database, ``--rounds`` times in alternating order (the machine is
shared: single runs swing by ±50 %). Prints the median claims per second of both and the ratio
(held / baseline; ~1.0 means the held rows cost the workers nothing), and the median cost of the
supervisor's ``list`` of held items (the first 200) on the loaded store.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bridge.store import OutboxState, Store, open_store
from bridge_dev.stores import drop_schema, pg_url, temp_schema_name

NOW = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
REASON = {"rule": "supervision.cosign", "severity": "hold", "message": "needs a co-sign", "evidence": None}


async def _fill(store: Store, *, held: int, queued: int) -> None:
    async with store.transaction() as conn:
        for i in range(held):
            await store.outbox.enqueue(
                kind="note",
                endpoint="clinic",
                partition_key=f"held-{i % 500}",
                item_key=f"n-{i}",
                payload={"note": {"id": f"n-{i}"}},
                now=NOW,
                held=[REASON],
                conn=conn,
            )
        for i in range(queued):
            await store.outbox.enqueue(
                kind="encounter",
                endpoint="clinic",
                partition_key=f"p-{i}",
                item_key=f"e-{i}",
                payload={"encounter": {"id": f"e-{i}"}},
                now=NOW,
                conn=conn,
            )


async def _claims_per_second(store: Store, items: int) -> float:
    done = 0
    began = time.perf_counter()
    while done < items:
        claimed = await store.outbox.claim(
            owner="bench", now=NOW, lease_seconds=60, limit=1, endpoint="clinic"
        )
        if not claimed:
            raise SystemExit("bench: ran out of queued items")
        await store.outbox.mark_delivered(claimed[0].id, owner="bench", now=NOW, result={})
        done += 1
    return items / (time.perf_counter() - began)


async def _run(kind: str, held: int, items: int, workdir: Path, tag: str) -> tuple[float, float | None]:
    schema = temp_schema_name() if kind == "postgres" else None
    url = pg_url() if kind == "postgres" else f"sqlite+aiosqlite:///{workdir / f'held-{held}-{tag}.db'}"
    store = await open_store(url, schema=schema)
    try:
        await _fill(store, held=held, queued=items)
        rate = await _claims_per_second(store, items)
        listing = None
        if held:
            began = time.perf_counter()
            rows = await store.outbox.list(states=[OutboxState.HELD], limit=200)
            listing = (time.perf_counter() - began) * 1000
            assert len(rows) == 200
        return rate, listing
    finally:
        await store.close()
        if schema is not None:
            await drop_schema(schema)


async def main(args: argparse.Namespace) -> int:
    bases: list[float] = []
    loads: list[float] = []
    lists: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = (0, args.held) if r % 2 == 0 else (args.held, 0)
            for n in order:
                rate, listing = await _run(args.store, n, args.items, Path(tmp), f"r{r}")
                (loads if n else bases).append(rate)
                if listing is not None:
                    lists.append(listing)
    base, loaded, listing = statistics.median(bases), statistics.median(loads), statistics.median(lists)
    print(
        f"store={args.store} items={args.items} held={args.held} rounds={args.rounds} "
        f"baseline={base:.0f} claims/s with_held={loaded:.0f} claims/s ratio={loaded / base:.2f} "
        f"list_held_200={listing:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--held", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
