"""Two bridge processes on one PostgreSQL share the outbox: every item is sent exactly once.

Small here (the throughput comparison is ``bench/exchange.py --mode share``); what is checked is
that claims are disjoint across processes: one attempt and one disclosure per item, work done by
both instances, and one resource per record at the EHR.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from bridge.exchange.run import start_worker
from bridge.exchange.views import Actor
from bridge.store import OutboxState, Store, open_store
from bridge_dev import samples
from bridge_dev.sandbox import Sandbox
from bridge_dev.stores import drop_schema, pg_url, temp_schema_name

from .support import ServiceFactory, World, count, require_postgres, settings_for

ROOT = Path(__file__).resolve().parents[2]
N = 80

pytestmark = pytest.mark.postgres


async def test_two_processes_share_the_outbox(
    sandbox_ehr: Sandbox, tmp_path: Path, make_service: ServiceFactory
) -> None:
    await require_postgres()
    schema = temp_schema_name()
    store: Store = await open_store(pg_url(), schema=schema)
    procs: list[asyncio.subprocess.Process] = []
    try:
        w = World(sandbox_ehr)
        people = [w.participant() for _ in range(8)]
        settings = settings_for(sandbox_ehr.base_url)
        cfg, directory = tmp_path / "bridge.toml", tmp_path / "directory.json"
        cfg.write_text(
            samples.worker_toml(
                settings.organization.id,
                base_url=sandbox_ehr.base_url,
                store_url=pg_url(),
                concurrency=2,
                rules_dir=ROOT / "config" / "rules",
            )
        )
        directory.write_text(
            json.dumps(
                {
                    "participants": [p.model_dump(mode="json") for p in people],
                    "peers": [w.peer.model_dump(mode="json")],
                }
            )
        )
        for name in ("bridge-a", "bridge-b"):
            proc, ready = await start_worker(
                cfg, directory, owner=name, schema=schema, idle_poll=0.05, cwd=ROOT
            )
            procs.append(proc)
            assert ready == {"ready": name}

        # this process only accepts work (like the web layer): no worker of its own runs
        svc = await make_service(settings, store, w.directory)
        actor = Actor(name="app", role="peer-specialist", organization="harbor-recovery")
        encounters = [w.encounter(people[i % 8], i) for i in range(N)]
        for enc in encounters:
            await svc.submissions.submit_encounter(enc, actor=actor)

        for _ in range(1200):
            counts = await store.outbox.counts()
            if counts["delivered"] + counts["dead"] == N:
                break
            await asyncio.sleep(0.1)
        assert counts == {"queued": 0, "sending": 0, "delivered": N, "dead": 0, "held": 0}

        items = await store.outbox.list(limit=N + 10)
        assert all(i.state is OutboxState.DELIVERED and i.attempts == 1 for i in items)  # claimed once
        disclosures = await store.audit.entries(action="disclose")
        assert sorted(Counter(e.subject for e in disclosures).values()) == [1] * N
        by_owner = Counter(e.actor for e in disclosures)
        assert set(by_owner) == {"bridge:bridge-a", "bridge:bridge-b"}, by_owner
        system = f"{settings.organization.identifier_system}/encounter"
        assert [count(sandbox_ehr.base_url, "Encounter", f"{system}|{e.id}") for e in encounters] == [1] * N
    finally:
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGTERM)
                await p.wait()
        await store.close()
        await drop_schema(schema)
