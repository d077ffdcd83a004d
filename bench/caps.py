"""What looking up the units already billed costs a session submission.

    .venv/bin/python bench/caps.py [--history 20000] [--items 300] [--store sqlite|postgres]

``submissions.submit_encounter`` (TX rules: a rolling-period cap) of ``--items`` sessions, on a
store whose billing ledger holds ``--history`` earlier sessions (spread over 1,000 participants,
20 of them the ones submitting). Baseline: the same sessions with ``billable = false`` (no ledger
lookup, no ledger row), in the same kind of fresh store; ``--rounds`` alternating rounds (the
machine is shared). Prints the median submissions per second of both and the ratio
(billable / baseline). No EHR is contacted: submission only queues.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from bridge.config import settings_from_dict
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.inbound import InboundSettings
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.roles.loader import load_policy
from bridge.store import open_store
from bridge_dev import samples
from bridge_dev.stack import bridge_config
from bridge_dev.stores import drop_schema, pg_url, temp_schema_name

RULES = Path(__file__).resolve().parents[1] / "config" / "rules"
NOW = datetime(2026, 11, 26, 21, 0, tzinfo=UTC)
CENTRAL = timezone(timedelta(hours=-6))
PEER = Actor(name="bench", role="peer-specialist", organization=samples.ORG_ID)
SUBMITTERS = 20


async def _run(kind: str, billable: bool, history: int, items: int, workdir: Path, tag: str) -> float:
    schema = temp_schema_name() if kind == "postgres" else None
    url = pg_url() if kind == "postgres" else f"sqlite+aiosqlite:///{workdir / f'caps-{billable}-{tag}.db'}"
    store = await open_store(url, schema=schema)
    peer = samples.certified_peer("peer-b")
    people = [samples.participant(f"pt-{i}", f"MRN-{i}") for i in range(SUBMITTERS)]
    settings = settings_from_dict(bridge_config("http://127.0.0.1:9/fhir"))
    svc = await ExchangeService.open(
        settings,
        directory=InMemoryDirectory(peers=[peer], participants=people),
        policy=load_policy(RULES, "TX"),
        store=store,
        inbound=InboundSettings(),
    )
    try:
        async with store.transaction() as conn:
            for i in range(history):
                item = await store.outbox.enqueue(
                    kind="encounter",
                    endpoint="clinic",
                    partition_key=f"h-{i}",
                    item_key=f"h-{i}",
                    payload={},
                    now=NOW,
                    conn=conn,
                )
                await store.billing.record(
                    encounter_id=f"h-{i}",
                    submission_id=item.id,
                    participant_id=f"pt-{i % 1000}",
                    peer_id="peer-b",
                    service_date=date(2026, 1, 1) + timedelta(days=i % 300),
                    billable_units=1,
                    now=NOW,
                    conn=conn,
                )
        sessions = []
        for i in range(items):
            start = datetime(2026, 10, 1, 9, 0, tzinfo=CENTRAL) + timedelta(days=i % 50)
            sessions.append(
                samples.encounter(
                    f"e-{i}",
                    participant_id=f"pt-{i % SUBMITTERS}",
                    peer_id=peer.id,
                    billable=billable,
                    start=start,
                    end=start + timedelta(minutes=30),
                )
            )
        began = time.perf_counter()
        for enc in sessions:
            await svc.submissions.submit_encounter(enc, actor=PEER)
        return items / (time.perf_counter() - began)
    finally:
        await svc.close()
        if schema is not None:
            await drop_schema(schema)


async def main(args: argparse.Namespace) -> int:
    bases: list[float] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for billable in order:
                rate = await _run(args.store, billable, args.history, args.items, Path(tmp), f"r{r}")
                (loads if billable else bases).append(rate)
    base, loaded = statistics.median(bases), statistics.median(loads)
    print(
        f"store={args.store} items={args.items} history={args.history} rounds={args.rounds} "
        f"baseline(non-billable)={base:.0f} submits/s billable(with usage)={loaded:.0f} submits/s "
        f"ratio={loaded / base:.2f}"
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
