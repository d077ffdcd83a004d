"""Crash test: SIGKILL the bridge at random moments; every item must reach the EHR exactly once.

    .venv/bin/python bench/crash.py --items 2000 --kills 20 [--store sqlite|postgres] [--seed 7]

The parent starts the sandbox EHR, creates the patients, and then runs the bridge as a child
process (``--child``): the child opens the store and the ``ExchangeService``, submits the items it
has no acknowledgement for (each with an ``Idempotency-Key``, as a peer app retries an unanswered
POST; encounters, and a note after every second encounter, per participant in order), and
delivers them with the outbound worker. The parent SIGKILLs the child at a random moment
``--kills`` times (some during start-up, some while submitting, most while delivering), restarts
it each time, and lets the last run finish. Then it asks the EHR, item by item, how many Encounters
and DocumentReferences carry each record's identifier, and prints ``lost=… duplicates=…``; the exit
status is non-zero unless both are 0 and the outbox holds only delivered items.

Leases are short (``--lease``, 3 s) so a killed instance's in-flight items are reclaimed quickly;
a reclaimed item is sent again, and the conditional creates make that a no-op at the EHR.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge_dev import samples  # noqa: E402
from bridge_dev.samples import MRN_SYSTEM as MRN  # noqa: E402
from bridge_dev.samples import ORG_SYSTEM  # noqa: E402
from bridge_dev.sandbox import Sandbox, sandbox  # noqa: E402

# --- the plan (written by the parent, read by every child) ----------------------------------------


def make_plan(
    *,
    items: int,
    participants: int,
    base_url: str,
    store_url: str,
    schema: str | None,
    run: str,
    lease: float,
    concurrency: int,
) -> dict[str, Any]:
    """Encounters and notes spread over ``participants``; a note follows every 2nd encounter."""
    plan_items: list[dict[str, str]] = []
    per_participant: dict[int, int] = {}
    i = 0
    while len(plan_items) < items:
        p = i % participants
        n = per_participant.get(p, 0)
        per_participant[p] = n + 1
        enc = f"enc-{run}-{p}-{n}"
        plan_items.append({"kind": "encounter", "id": enc, "participant": f"pt-{run}-{p}"})
        if n % 2 == 1 and len(plan_items) < items:
            plan_items.append(
                {
                    "kind": "note",
                    "id": f"note-{run}-{p}-{n}",
                    "encounter": enc,
                    "participant": f"pt-{run}-{p}",
                }
            )
        i += 1
    return {
        "run": run,
        "base_url": base_url,
        "store_url": store_url,
        "schema": schema,
        "lease": lease,
        "concurrency": concurrency,
        "participants": [f"pt-{run}-{p}" for p in range(participants)],
        "items": plan_items,
    }


def create_patients(base_url: str, plan: dict[str, Any]) -> None:
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": MRN, "value": f"MRN-{pid}"}],
                "name": [{"family": "Bench", "given": [pid]}],
            },
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={MRN}|MRN-{pid}"},
        }
        for pid in plan["participants"]
    ]
    r = httpx.post(
        base_url, json={"resourceType": "Bundle", "type": "transaction", "entry": entries}, timeout=120
    )
    r.raise_for_status()


# --- the child: the bridge ------------------------------------------------------------------------


def settings_dict(plan: dict[str, Any]) -> dict[str, Any]:
    from bridge_dev.stack import bridge_config

    return bridge_config(
        plan["base_url"],
        org=f"org-{plan['run']}",
        org_name="Harbor Recovery",
        store_url=plan["store_url"],
        endpoint={
            "max_concurrency": plan["concurrency"],
            "retry_max_seconds": 1,
            "breaker_failures": 1000,  # the bench measures the outbox, not our breaker
        },
        store={"lease_seconds": plan["lease"]},
    )


def records(plan: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The directory and the records by id (built the same way in every child run)."""
    from datetime import datetime, timedelta

    from bridge.domain import Activity
    from bridge.exchange.directory import InMemoryDirectory

    peer = samples.certified_peer(f"peer-{plan['run']}")
    people = [samples.participant(pid, f"MRN-{pid}") for pid in plan["participants"]]
    recs: dict[str, Any] = {}
    start = datetime(2026, 11, 26, 9, 0, tzinfo=samples.CENTRAL)
    for k, item in enumerate(plan["items"]):
        if item["kind"] == "encounter":
            at = start + timedelta(minutes=k)
            recs[item["id"]] = samples.encounter(
                item["id"],
                participant_id=item["participant"],
                peer_id=peer.id,
                start=at,
                end=at + timedelta(minutes=45),
                activities=(Activity.RECOVERY_COACHING,),
                billable=False,
            )
        else:
            recs[item["id"]] = samples.plain_note(
                item["id"],
                participant_id=item["participant"],
                author_id=peer.id,
                encounter_id=item["encounter"],
                written_at=start + timedelta(minutes=k, hours=1),
            )
    return InMemoryDirectory(participants=people, peers=[peer]), recs


async def open_service(plan: dict[str, Any], *, idle_poll: float = 0.1) -> Any:
    from bridge.config import settings_from_dict
    from bridge.exchange.inbound import InboundSettings
    from bridge.exchange.outbound import OutboundSettings
    from bridge.exchange.wiring import ExchangeService
    from bridge.roles import load_policy

    directory, recs = records(plan)
    settings = settings_from_dict(settings_dict(plan))
    svc = await ExchangeService.open(
        settings,
        directory=directory,
        policy=load_policy(ROOT / "config" / "rules", "TX"),
        store_schema=plan["schema"],
        outbound=OutboundSettings(
            lease_seconds=plan["lease"],
            max_attempts=1000,
            base_backoff_seconds=0.2,
            max_backoff_seconds=2.0,
            idle_poll_seconds=idle_poll,
        ),
        inbound=InboundSettings(),
    )
    return svc, recs


async def child(plan: dict[str, Any], ack_file: Path, acked: set[str], submit: bool) -> int:
    from bridge.exchange.views import Actor

    svc, recs = await open_service(plan)
    actor = Actor(name="bench-app", role="peer-specialist", organization="harbor-recovery")
    svc.worker.start()
    by_participant: dict[str, list[dict[str, str]]] = {}
    for item in plan["items"]:
        by_participant.setdefault(item["participant"], []).append(item)

    async def submit_all(items: list[dict[str, str]], acks: Any) -> None:
        for item in items:  # in order: a note is submitted after its encounter was acknowledged
            if item["id"] in acked:
                continue
            rec = recs[item["id"]]
            if item["kind"] == "encounter":
                await svc.submissions.submit_encounter(rec, actor=actor, idempotency_key=item["id"])
            else:
                await svc.submissions.submit_note(rec, actor=actor, idempotency_key=item["id"])
            acks.write(item["id"] + "\n")
            acks.flush()  # the 202 reached the client only once this line is written

    if submit:
        with open(ack_file, "a") as acks:  # noqa: ASYNC230 - a local append, flushed per line
            sem = asyncio.Semaphore(16)

            async def one(items: list[dict[str, str]]) -> None:
                async with sem:
                    await submit_all(items, acks)

            await asyncio.gather(*(one(v) for v in by_participant.values()))
    # deliver until nothing is pending
    while True:
        counts = await svc.store.outbox.counts()
        if counts["queued"] == 0 and counts["sending"] == 0:
            break
        await asyncio.sleep(0.1)
    await svc.close()
    print(json.dumps({"done": True, **counts}), flush=True)
    return 0


# --- the parent -----------------------------------------------------------------------------------


async def verify(base_url: str, plan: dict[str, Any]) -> tuple[int, int]:
    """(lost, duplicates) counted at the EHR, record by record."""
    sem = asyncio.Semaphore(16)
    lost = dup = 0

    async def one(http: httpx.AsyncClient, item: dict[str, str]) -> None:
        nonlocal lost, dup
        rtype, kind = (
            ("Encounter", "encounter") if item["kind"] == "encounter" else ("DocumentReference", "note")
        )
        async with sem:
            r = await http.get(
                f"{base_url}/{rtype}",
                params={"identifier": f"{ORG_SYSTEM}/{kind}|{item['id']}", "_summary": "count"},
            )
        r.raise_for_status()
        n = int(r.json()["total"])
        lost += n == 0
        dup += max(0, n - 1)

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(one(http, item) for item in plan["items"]))
    return lost, dup


async def outbox_states(plan: dict[str, Any]) -> dict[str, int]:
    from bridge.store import open_store

    store = await open_store(plan["store_url"], schema=plan["schema"])
    try:
        return await store.outbox.counts()
    finally:
        await store.close()


def spawn(plan_file: Path, ack_file: Path, log: Path, *, submit: bool = True) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--child", str(plan_file), "--ack", str(ack_file)]
    if not submit:
        cmd.append("--no-submit")
    with log.open("ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def run(args: argparse.Namespace) -> int:
    from bridge_dev.stores import drop_schema, pg_url, temp_schema_name

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    run_id = f"{int(time.time())}{rng.randrange(1000):03d}"
    schema = temp_schema_name() if args.store == "postgres" else None
    store_url = pg_url() if args.store == "postgres" else f"sqlite+aiosqlite:///{work / 'bridge.db'}"
    ehr: Sandbox = sandbox(work / "ehr").start()
    try:
        plan = make_plan(
            items=args.items,
            participants=args.participants,
            base_url=ehr.base_url,
            store_url=store_url,
            schema=schema,
            run=run_id,
            lease=args.lease,
            concurrency=args.concurrency,
        )
        create_patients(ehr.base_url, plan)
        plan_file, ack_file, log = work / "plan.json", work / "acks.txt", work / "child.log"
        plan_file.write_text(json.dumps(plan))
        t0 = time.monotonic()
        kills = 0
        while kills < args.kills:
            proc = spawn(plan_file, ack_file, log)
            delay = rng.uniform(args.min_delay, args.max_delay)
            try:
                proc.wait(timeout=delay)
                print(f"run finished before kill {kills + 1} (exit {proc.returncode})", flush=True)
                if proc.returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                acked = len(ack_file.read_text().split()) if ack_file.exists() else 0
                print(
                    f"kill {kills:>2} after {delay:4.2f}s: {acked}/{len(plan['items'])} acknowledged",
                    flush=True,
                )
        proc = spawn(plan_file, ack_file, log)
        proc.wait(timeout=args.timeout)
        elapsed = time.monotonic() - t0
        if proc.returncode != 0:
            print(f"final run failed with exit {proc.returncode}; see {log}")
            return 2
        states = asyncio.run(outbox_states(plan))
        lost, dup = asyncio.run(verify(ehr.base_url, plan))
        print(
            f"store={args.store} items={len(plan['items'])} kills={kills} elapsed={elapsed:.1f}s "
            f"outbox={states}"
        )
        print(f"lost={lost} duplicates={dup}")
        ok = lost == 0 and dup == 0 and states["delivered"] == len(plan["items"])
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept for inspection: {work}")
        return 0 if ok else 1
    finally:
        ehr.stop()
        if schema is not None:
            asyncio.run(drop_schema(schema))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--min-delay", type=float, default=0.5, help="earliest kill after a (re)start, s")
    parser.add_argument("--max-delay", type=float, default=4.0, help="latest kill after a (re)start, s")
    parser.add_argument("--timeout", type=float, default=900.0, help="for the final run, s")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ack", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-submit", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        plan = json.loads(args.child.read_text())
        acked = set(args.ack.read_text().split()) if args.ack.exists() else set()
        return asyncio.run(child(plan, args.ack, acked, submit=not args.no_submit))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
