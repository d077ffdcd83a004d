"""Inbound referrals and the closed loop against the real sandbox EHR.

A clinician's ServiceRequest + Task reach the inbox through a Subscriptions Backport subscription
(and through polling with subscriptions off); accept/start/complete move the Task at the EHR with
If-Match; a gap (missed events while the listener was down) is noticed and caught up by polling.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bridge.domain import ReferralStatus
from bridge.errors import InputError, StateTransitionError
from bridge.exchange.inbound import InboundSettings
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import (
    Listener,
    ServiceFactory,
    World,
    create_patient,
    create_referral,
    create_task_topic,
    eventually,
    settings_for,
)

PEER = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery", source="10.1.2.3")
TOKEN = "notify-secret"


@dataclass
class Setup:
    ehr: Sandbox
    svc: ExchangeService
    store: Store
    listener: Listener
    owner: str
    patient_id: str
    world: World


@pytest.fixture
async def setup(
    fresh_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> AsyncIterator[Setup]:
    create_task_topic(fresh_ehr.base_url)
    w = World(fresh_ehr)
    p = w.participant()
    patient_id = create_patient(fresh_ehr.base_url, p)
    holder: dict[str, Any] = {}
    listener = await Listener(lambda body: holder["svc"].inbound.handle_notification(body), TOKEN).start()
    inbound = InboundSettings(
        notify_url=listener.url,
        notify_token=TOKEN,
        heartbeat_seconds=1,
        allow_fast_poll=True,
        gap_grace_seconds=0.2,
    )
    svc = await make_service(
        settings_for(fresh_ehr.base_url, org=PEER.organization), sqlite_store, w.directory, inbound=inbound
    )
    holder["svc"] = svc
    owner = await svc.intake.organization_ref("clinic")
    yield Setup(fresh_ehr, svc, sqlite_store, listener, owner, patient_id, w)
    await listener.stop()


async def _in_inbox(store: Store, task_id: str, status: ReferralStatus | None = None) -> bool:
    entry = await store.inbox.find_task("clinic", task_id)
    return entry is not None and (status is None or entry.referral.status is status)


def _task(ehr: Sandbox, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{ehr.base_url}/Task/{task_id}", timeout=30)
    r.raise_for_status()
    return dict(r.json())


async def test_referral_round_trip_through_the_subscription(setup: Setup) -> None:
    s = setup
    state = await s.svc.inbound.subscribe("clinic")
    assert state.kind == "backport"
    assert await eventually(lambda: _status_is(s, "active"))
    assert "handshake" in s.listener.received

    task_id = create_referral(
        s.ehr.base_url,
        owner_ref=s.owner,
        patient_id=s.patient_id,
        tag=s.world.tag,
        extra_sr={"note": [{"text": "UDS positive for fentanyl on 11/18"}]},  # not for a peer's eyes
    )
    # no polling runs in this test: only the notification can bring it in
    assert await eventually(lambda: _in_inbox(s.store, task_id))
    [item] = await s.svc.referrals.list(actor=PEER)
    ref = item.referral
    assert ref.status is ReferralStatus.REQUESTED and ref.reason is None  # free text stays at the clinic
    assert ref.contact is not None and ref.contact.name.family == "Quinn"
    assert "fentanyl" not in ref.model_dump_json()  # minimum necessary
    receives = await s.store.audit.entries(action="receive")
    assert [e.subject for e in receives] == [ref.id]
    [seen] = await s.store.audit.entries(action="view-list")
    assert seen.actor == "peer-app" and seen.source == "10.1.2.3" and seen.detail == {"referrals": [ref.id]}

    accepted = (await s.svc.referrals.act(ref.id, "accept", actor=PEER)).referral
    assert accepted.status is ReferralStatus.ACCEPTED
    at_ehr = _task(s.ehr, task_id)
    assert at_ehr["status"] == "accepted" and at_ehr["businessStatus"]["coding"][0]["code"] == "3.0"

    await s.svc.referrals.act(ref.id, "start", actor=PEER)
    with pytest.raises(InputError) as exc:
        await s.svc.referrals.act(ref.id, "complete", actor=PEER)
    assert exc.value.field == "outputs"
    done = (await s.svc.referrals.act(ref.id, "complete", actor=PEER, outputs=["Procedure/proc-1"])).referral
    at_ehr = _task(s.ehr, task_id)
    assert at_ehr["status"] == "completed" and at_ehr["businessStatus"]["coding"][0]["code"] == "7.0"
    assert [o["valueReference"]["reference"] for o in at_ehr["output"]] == ["Procedure/proc-1"]
    assert done.status is ReferralStatus.COMPLETED and done.outputs == ("Procedure/proc-1",)
    with pytest.raises(StateTransitionError):
        await s.svc.referrals.act(ref.id, "start", actor=PEER)
    actions = [e.action for e in await s.store.audit.entries(subject=ref.id)]
    assert [a for a in actions if a.startswith("referral.")] == [
        "referral.accept",
        "referral.start",
        "referral.complete",
    ]


async def _true(value: bool) -> bool:
    return value


def _put_task(ehr: Sandbox, task: dict[str, Any]) -> None:
    """The clinician's side editing the Task at the EHR."""
    httpx.put(f"{ehr.base_url}/Task/{task['id']}", json=task, timeout=30).raise_for_status()


async def _status_is(s: Setup, status: str) -> bool:
    return await s.svc.inbound.subscription_status("clinic") == status


async def test_polling_with_subscriptions_off(setup: Setup) -> None:
    s = setup
    task_id = create_referral(s.ehr.base_url, owner_ref=s.owner, patient_id=s.patient_id, tag=s.world.tag)
    other = create_referral(
        s.ehr.base_url, owner_ref="Organization/someone-else", patient_id=s.patient_id, tag="x" + s.world.tag
    )
    assert await s.svc.inbound.poll("clinic") == 1
    assert await _in_inbox(s.store, task_id) and not await _in_inbox(s.store, other)
    assert await s.svc.inbound.poll("clinic") == 0  # de-duplicated: nothing new
    # the clinician changes the Task: the next poll (from the stored cursor) brings the change
    task = _task(s.ehr, task_id)
    task["status"] = "cancelled"
    task["statusReason"] = {"text": "patient moved"}
    _put_task(s.ehr, task)
    assert await s.svc.inbound.poll("clinic") == 1
    assert await _in_inbox(s.store, task_id, ReferralStatus.CANCELLED)


async def test_if_match_conflict_is_refetched_and_reapplied(setup: Setup) -> None:
    s = setup
    task_id = create_referral(s.ehr.base_url, owner_ref=s.owner, patient_id=s.patient_id, tag=s.world.tag)
    await s.svc.inbound.poll("clinic")
    [item] = await s.svc.referrals.list(actor=PEER)
    ref = item.referral

    # between our read and our write the clinician edits the Task (a note): our PUT gets 412 once
    client = s.svc.clients["clinic"]
    real_update = client.update
    calls = {"n": 0}

    async def racing_update(resource: Any, *, if_match: str | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            edited = _task(s.ehr, task_id)
            edited["note"] = [{"text": "called the clinic"}]
            _put_task(s.ehr, edited)
        return await real_update(resource, if_match=if_match)

    client.update = racing_update  # type: ignore[method-assign]
    accepted = (await s.svc.referrals.act(ref.id, "accept", actor=PEER)).referral
    assert calls["n"] == 2 and accepted.status is ReferralStatus.ACCEPTED
    at_ehr = _task(s.ehr, task_id)
    assert at_ehr["status"] == "accepted" and at_ehr["note"] == [{"text": "called the clinic"}]

    # now the clinician cancels between our read and write: re-applying is no longer valid
    calls["n"] = 0

    async def cancelling_update(resource: Any, *, if_match: str | None = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            edited = _task(s.ehr, task_id)
            edited["status"] = "cancelled"
            edited["statusReason"] = {"text": "withdrawn"}
            _put_task(s.ehr, edited)
        return await real_update(resource, if_match=if_match)

    client.update = cancelling_update  # type: ignore[method-assign]
    with pytest.raises(StateTransitionError) as exc:
        await s.svc.referrals.act(ref.id, "start", actor=PEER)
    assert exc.value.current == "cancelled"
    assert _task(s.ehr, task_id)["status"] == "cancelled"


async def test_gap_while_listener_down_is_caught_up(setup: Setup) -> None:
    s = setup
    await s.svc.inbound.subscribe("clinic")
    assert await eventually(lambda: _status_is(s, "active"))
    s.listener.down = True
    missed = create_referral(s.ehr.base_url, owner_ref=s.owner, patient_id=s.patient_id, tag=s.world.tag)
    # the EHR tries 3 times, then gives up on the subscription for good
    assert await eventually(lambda: _status_is(s, "error"), within=20)
    assert not await _in_inbox(s.store, missed)
    s.listener.down = False
    # the watchdog notices the silence (no heartbeat for 2 periods), re-requests, and polls
    s.svc.inbound.subs["clinic"].last_contact = s.svc.clock() - timedelta(seconds=5)
    assert await s.svc.inbound.check_heartbeat("clinic")
    assert await _in_inbox(s.store, missed)
    assert await eventually(lambda: _status_is(s, "active"))


async def test_event_count_gap_triggers_a_catch_up_poll(setup: Setup) -> None:
    s = setup
    # no subscription at the EHR: nothing but the catch-up poll can bring the Task in
    task_id = create_referral(s.ehr.base_url, owner_ref=s.owner, patient_id=s.patient_id, tag=s.world.tag)
    sub = s.svc.inbound.subs["clinic"]
    sub.subscription_id = "sub-1"
    # a heartbeat saying 5 events happened when we saw none: poll after the grace period
    heartbeat = {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [
            {
                "resource": {
                    "resourceType": "Parameters",
                    "parameter": [
                        {
                            "name": "subscription",
                            "valueReference": {
                                "reference": f"{s.ehr.base_url}/Subscription/{sub.subscription_id}"
                            },
                        },
                        {"name": "type", "valueCode": "heartbeat"},
                        {"name": "events-since-subscription-start", "valueString": "5"},
                    ],
                }
            }
        ],
    }
    sub.seen = 0
    result = await s.svc.inbound.handle_notification(heartbeat)
    assert result.gap and result.endpoint == "clinic"
    assert sub.gap_check is not None
    await sub.gap_check
    assert await _in_inbox(s.store, task_id)
    assert sub.seen >= 5


async def test_criteria_subscription_fallback_pings_then_polls(
    fresh_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """No Task topic at the EHR: an R4 criteria subscription whose empty ping makes the bridge poll."""
    w = World(fresh_ehr)
    p = w.participant()
    patient_id = create_patient(fresh_ehr.base_url, p)
    holder: dict[str, Any] = {}
    listener = await Listener(lambda body: holder["svc"].inbound.handle_notification(body), TOKEN).start()
    try:
        inbound = InboundSettings(notify_url=listener.url, notify_token=TOKEN, allow_fast_poll=True)
        svc = await make_service(settings_for(fresh_ehr.base_url), sqlite_store, w.directory, inbound=inbound)
        holder["svc"] = svc
        owner = await svc.intake.organization_ref("clinic")
        state = await svc.inbound.subscribe("clinic")
        assert state.kind == "criteria"
        task_id = create_referral(fresh_ehr.base_url, owner_ref=owner, patient_id=patient_id, tag=w.tag)
        assert await eventually(lambda: _in_inbox(sqlite_store, task_id))
        assert await eventually(lambda: _true("ping" in listener.received))  # recorded after handling
    finally:
        await listener.stop()


async def test_restart_reuses_the_subscription(setup: Setup, make_service: ServiceFactory) -> None:
    s = setup
    first = await s.svc.inbound.subscribe("clinic")
    first_id = first.subscription_id
    assert await eventually(lambda: _status_is(s, "active"))
    # the EHR gave up on it meanwhile (say, the bridge was down for a while)
    async with httpx.AsyncClient(base_url=s.ehr.base_url, timeout=30) as http:
        sub = (await http.get(f"/Subscription/{first_id}")).json()
        sub["status"] = "error"
        (await http.put(f"/Subscription/{first_id}", json=sub)).raise_for_status()

    # a new bridge process on the same store adopts it and re-requests it
    again = await make_service(s.svc.settings, s.store, s.world.directory, inbound=s.svc.inbound.settings)
    state = await again.inbound.subscribe("clinic")
    assert state.subscription_id == first_id and state.kind == "backport"
    assert await eventually(lambda: _status_is(s, "active"))
    async with httpx.AsyncClient(base_url=s.ehr.base_url, timeout=30) as http:
        subs = (await http.get("/Subscription", params={"_summary": "count"})).json()
    assert subs["total"] == 1
