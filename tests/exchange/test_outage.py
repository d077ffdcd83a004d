"""The EHR goes away under load: nothing is lost, nothing dead-lettered, the backlog drains when it
returns. Small here; the 60-second outage with its drain time is ``bench/exchange.py --mode outage``."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bridge.exchange.views import Actor
from bridge.store import OutboxState, Store
from bridge_dev.sandbox import Sandbox

from .support import FAST, ServiceFactory, World, count, settings_for

ACTOR = Actor(name="app", role="peer-specialist", organization="harbor-recovery")


async def _until(store: Store, check: object, tries: int = 600) -> dict[str, int]:
    for _ in range(tries):
        counts = await store.outbox.counts()
        if check(counts):  # type: ignore[operator]
            return counts
        await asyncio.sleep(0.05)
    return await store.outbox.counts()


async def test_backlog_survives_an_outage_and_drains(
    fresh_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(fresh_ehr)
    people = [w.participant() for _ in range(3)]
    settings = settings_for(
        fresh_ehr.base_url, retry_max_seconds=0.1, breaker_failures=3, breaker_reset_seconds=0.5
    )
    svc = await make_service(
        settings,
        sqlite_store,
        w.directory,
        # FAST, but retrying for as long as the outage lasts
        outbound=replace(FAST, max_attempts=1000, base_backoff_seconds=0.1, max_backoff_seconds=0.5),
    )
    svc.worker.start()
    encounters = [w.encounter(people[i % 3], i) for i in range(24)]
    for enc in encounters[:6]:
        await svc.submissions.submit_encounter(enc, actor=ACTOR)
    await _until(sqlite_store, lambda c: c["delivered"] == 6)

    fresh_ehr.stop()  # keeps its data directory: the same EHR comes back below
    for enc in encounters[6:18]:
        await svc.submissions.submit_encounter(enc, actor=ACTOR)
    # the head of each participant's queue is retried (the rest wait behind it, in order);
    # nothing is given up on
    for _ in range(600):
        waiting = await sqlite_store.outbox.list(states=[OutboxState.QUEUED])
        tried = [i for i in waiting if i.attempts >= 2 and i.last_error]
        if len(tried) == 3:
            break
        await asyncio.sleep(0.05)
    assert len(tried) == 3 and all(
        "transport" in (i.last_error or "") or "circuit" in (i.last_error or "") for i in tried
    )
    during = await sqlite_store.outbox.counts()
    assert during["queued"] + during["sending"] == 12 and during["delivered"] == 6 and during["dead"] == 0

    fresh_ehr.start()
    for enc in encounters[18:]:
        await svc.submissions.submit_encounter(enc, actor=ACTOR)
    counts = await _until(sqlite_store, lambda c: c["delivered"] == 24, tries=1200)
    assert counts == {"queued": 0, "sending": 0, "delivered": 24, "dead": 0, "held": 0}
    system = f"{settings.organization.identifier_system}/encounter"
    assert [count(fresh_ehr.base_url, "Encounter", f"{system}|{e.id}") for e in encounters] == [1] * 24
