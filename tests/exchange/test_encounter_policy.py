"""``ExchangeService.submissions.submit_encounter`` asks the policy about the session (real rule files, real
SQLite store, the sandbox EHR for delivery): a peer without the endorsement the referral's program
needs, or with a dual relationship, is refused and nothing is queued; billing problems are
accepted with their warnings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bridge.domain import Endorsement, Referral, ReferralStatus
from bridge.errors import ScopeViolationError
from bridge.exchange.views import Actor
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, settings_for

CENTRAL = timezone(timedelta(hours=-6))

PEER = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery")


async def _referral(store: Store, w: World, programs: tuple[str, ...]) -> str:
    ref = Referral(
        id=f"ref-{w.tag}",
        endpoint="clinic",
        task_id=f"task-{w.tag}",
        service_request_id=f"sr-{w.tag}",
        status=ReferralStatus.IN_PROGRESS,
        programs=programs,
    )
    await store.inbox.upsert(ref, now=datetime(2026, 11, 26, 9, 0, tzinfo=CENTRAL))
    return ref.id


@pytest.fixture
async def world(sandbox_ehr: Sandbox) -> World:
    return World(sandbox_ehr)


async def test_endorsement_that_does_not_fit_the_program_is_refused(
    world: World, sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = world
    p = w.participant(at_ehr=False)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    referral_id = await _referral(sqlite_store, w, ("Mental health",))  # the peer: recovery support only
    with pytest.raises(ScopeViolationError) as exc:
        await svc.submissions.submit_encounter(w.encounter(p, referral_id=referral_id), actor=PEER)
    assert [v["rule"] for v in exc.value.violations] == ["assignment.endorsement"]
    assert await sqlite_store.outbox.find(kind="encounter", item_key=f"enc-{p.id}-0") == []

    # near miss: the same session by a peer holding the mental-health endorsement is queued
    w.directory.add(w.peer.model_copy(update={"endorsements": (Endorsement.MENTAL_HEALTH,)}))
    status = await svc.submissions.submit_encounter(w.encounter(p, referral_id=referral_id), actor=PEER)
    assert status.state == "queued" and status.warnings == []


async def test_dual_relationship_is_refused(
    world: World, sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = world
    p = w.participant(at_ehr=False)
    w.directory.add(p.model_copy(update={"household_id": f"h-{w.tag}"}))
    w.directory.add(w.peer.model_copy(update={"household_id": f"h-{w.tag}"}))
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    with pytest.raises(ScopeViolationError) as exc:
        await svc.submissions.submit_encounter(w.encounter(p), actor=PEER)
    assert [v["field"] for v in exc.value.violations] == ["household"]
    assert await sqlite_store.outbox.find(kind="encounter", item_key=f"enc-{p.id}-0") == []


async def test_billing_problems_are_accepted_with_warnings(
    world: World, sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = world
    p = w.participant(at_ehr=False)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)  # TX rules
    start = datetime(2026, 11, 26, 14, 0, tzinfo=CENTRAL)
    short = w.encounter(p, 0, billable=True, start=start, end=start.replace(minute=5))
    status = await svc.submissions.submit_encounter(short, actor=PEER)
    assert status.state == "queued"
    assert [v["rule"] for v in status.warnings] == ["billing.zero-units"]
    [entry] = [e for e in await sqlite_store.audit.entries(action="submit") if e.subject == status.id]
    assert entry.detail["verdict"] == "warn" and entry.detail["rules_fired"] == ["billing.zero-units"]

    whole = w.encounter(p, 1, billable=True)  # 50 minutes: 3 units, nothing to say
    assert (await svc.submissions.submit_encounter(whole, actor=PEER)).warnings == []
