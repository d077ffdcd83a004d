"""Billing caps see what was already billed (real SQLite/PostgreSQL store, real rule files): each
accepted billable session's units go to the billing ledger with it, and the next session is judged
with the units already billed in the cap's window. The session that crosses a cap gets the rule's
verdict (caps are warnings: accepted, with fewer billable units); the one before it does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.domain import Participant, PeerEncounter
from bridge.exchange.context import utc_now
from bridge.exchange.inbound import InboundSettings
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.roles.loader import load_policy
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import FAST, RULES, World, settings_for

CENTRAL = timezone(timedelta(hours=-6))
PEER = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery")


@pytest.fixture
async def services() -> AsyncIterator[Any]:
    made: list[ExchangeService] = []

    # the sessions below have fixed dates (2026-06 to 2027-01); the service's clock runs from just
    # after the last of them, so the boundary's date window accepts all of them whatever today is
    shift = datetime(2027, 1, 20, tzinfo=UTC) - utc_now()

    async def make(jurisdiction: str, w: World, store: Store, base_url: str) -> ExchangeService:
        svc = await ExchangeService.open(
            settings_for(base_url),
            directory=w.directory,
            policy=load_policy(RULES, jurisdiction),
            store=store,
            outbound=FAST,
            inbound=InboundSettings(),
            clock=lambda: utc_now() + shift,
        )
        made.append(svc)
        return svc

    yield make
    for svc in made:
        for c in svc.clients.values():
            await c.aclose()


class Sessions:
    """Billable sessions for one participant; ``send`` answers the rules that fired (the 202's)."""

    def __init__(self, w: World, svc: ExchangeService, p: Participant) -> None:
        self.w, self.svc, self.p, self.n = w, svc, p, 0

    def session(self, day: date, minutes: int, n: int | None = None) -> PeerEncounter:
        if n is None:
            self.n += 1
            n = self.n
        start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=CENTRAL)
        return self.w.encounter(self.p, n, billable=True, start=start, end=start + timedelta(minutes=minutes))

    async def send(self, enc: PeerEncounter) -> list[str]:
        status = await self.svc.submissions.submit_encounter(enc, actor=PEER)
        assert status.state == "queued"
        return [str(v["rule"]) for v in status.warnings]


async def test_texas_rolling_six_months(sandbox_ehr: Sandbox, store: Store, services: Any) -> None:
    w = World(sandbox_ehr)
    svc = await services("TX", w, store, sandbox_ehr.base_url)  # 104 units per 182 days
    s = Sessions(w, svc, w.participant(at_ehr=False))
    for day in (date(2026, 6, 1), date(2026, 7, 1), date(2026, 8, 1)):
        assert await s.send(s.session(day, 8 * 60)) == []  # 32 units each: 96
    fourth = s.session(date(2026, 8, 15), 2 * 60)  # 8 units: 104, at the cap, not over it
    assert await s.send(fourth) == []
    crossing = s.session(date(2026, 8, 20), 30)  # 2 units over the cap
    status = await svc.submissions.submit_encounter(crossing, actor=PEER)
    [cap] = status.warnings
    assert (cap["rule"], cap["severity"]) == ("billing.period-cap", "warn")
    assert "0 of 2 units can be billed" in cap["message"]
    # the warning stays with the submission (rule, severity, message; no evidence) after the 202
    stored = (await svc.submissions.get(status.id)).warnings
    assert stored == [{"rule": "billing.period-cap", "severity": "warn", "message": cap["message"]}]
    [entry] = await store.audit.entries(subject=status.id, action="submit")
    assert entry.detail is not None
    assert (entry.detail["verdict"], entry.detail["rules_fired"]) == ("warn", ["billing.period-cap"])

    # a re-sent session replaces its own units rather than counting them twice (and the crossing
    # session was recorded with the 0 units it may bill, or this would cross the cap too)
    assert await s.send(fourth) == []
    # near miss: the June session has left the rolling window by January
    assert await s.send(s.session(date(2027, 1, 15), 8 * 60)) == []
    # another participant has their own budget
    other = Sessions(w, svc, w.participant(at_ehr=False))
    assert await other.send(other.session(date(2026, 8, 20), 30)) == []


async def test_virginia_daily_and_yearly_caps(sandbox_ehr: Sandbox, store: Store, services: Any) -> None:
    w = World(sandbox_ehr)
    svc = await services("VA", w, store, sandbox_ehr.base_url)  # 16 units a day, 900 hours a year
    s = Sessions(w, svc, w.participant(at_ehr=False))
    day = date(2026, 6, 1)
    assert await s.send(s.session(day, 3 * 60)) == []  # 12 units
    assert await s.send(s.session(day, 60)) == []  # 16: at the cap
    assert await s.send(s.session(day, 30)) == ["billing.daily-cap"]
    assert await s.send(s.session(day + timedelta(days=1), 30)) == []  # a new day

    # the year so far: 899 hours billed before June (history the ledger already holds)
    past = await store.outbox.enqueue(
        kind="encounter",
        endpoint="clinic",
        partition_key=f"history-{w.tag}",
        item_key=f"hist-{w.tag}",
        payload={},
        now=datetime(2026, 5, 1, tzinfo=CENTRAL),
    )
    await store.billing.record(
        encounter_id=f"hist-{w.tag}",
        submission_id=past.id,
        participant_id=s.p.id,
        peer_id=w.peer.id,
        service_date=date(2026, 5, 1),
        billable_units=899 * 4 - 4 * 4 - 2,  # with June's 4.5 hours: 899 hours
        now=datetime(2026, 5, 1, tzinfo=CENTRAL),
    )
    assert await s.send(s.session(date(2026, 6, 3), 60)) == []  # 900 hours: at the cap
    assert await s.send(s.session(date(2026, 6, 4), 30)) == ["billing.yearly-cap"]
    assert await s.send(s.session(date(2027, 1, 4), 30)) == []  # a new year


async def test_concurrent_sessions_cannot_both_pass_a_cap(
    sandbox_ehr: Sandbox, store: Store, services: Any
) -> None:
    """Sessions for one participant submitted at once are judged one after the other (usage read
    and ledger row in one transaction, per-participant lock): exactly those past the cap get it."""
    w = World(sandbox_ehr)
    svc = await services("VA", w, store, sandbox_ehr.base_url)  # 16 units a day
    s = Sessions(w, svc, w.participant(at_ehr=False))
    day = date(2026, 6, 1)
    sessions = [s.session(day, 60) for _ in range(6)]  # 4 units each: four fit, two are over
    other = Sessions(w, svc, w.participant(at_ehr=False))  # another participant's lock and budget
    theirs = [other.session(day, 60) for _ in range(2)]
    results = await asyncio.gather(*(s.send(e) for e in sessions + theirs))
    mine, others = results[:6], results[6:]
    assert sorted(mine) == [[], [], [], [], ["billing.daily-cap"], ["billing.daily-cap"]]
    assert others == [[], []]
    assert await store.billing.units(participant_id=s.p.id, since=day, until=day) == 16
