"""Documentation, billing and supervision checks against the real default and state rule files.

Times are frozen at non-UTC instants (Central and Eastern offsets) to catch timezone slips.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.domain import CertificationLevel, PeerEncounter, PeerNote, PeerWorker, Role, parse
from bridge.roles import BillingUsage, NoteFacts, Policy, Verdict
from bridge.roles.billing import business_days_between, units_for

CST = timezone(timedelta(hours=-6))
EST = timezone(timedelta(hours=-5))
TEXT = "Recovery coaching on managing stress at work; she set a goal to take her lunch break outside."


def billable(**changes: Any) -> NoteFacts:
    """A complete billable note (every field any state requires), changed by ``changes``."""
    data: dict[str, Any] = {
        "text": TEXT,
        "billable": True,
        "participant_id": "p-1",
        "service_type": "recovery-coaching",
        "activities": ["recovery-coaching"],
        "start": datetime(2026, 3, 3, 14, 0, tzinfo=CST),  # a Tuesday
        "end": datetime(2026, 3, 3, 14, 50, tzinfo=CST),
        "location": "Harbor drop-in center",
        "modality": "individual",
        "method": "face-to-face",
        "summary": "Coaching on stress at work",
        "goal": "Keep steady employment",
        "progress": "Uses breaks to reset",
        "signer": "peer-17",
        "credential": "CPRS",
        "written_at": datetime(2026, 3, 3, 17, 0, tzinfo=CST),
    }
    data.update(changes)
    return NoteFacts.model_validate(data)


@pytest.mark.parametrize(
    ("minutes", "units"), [(0, 0), (7, 0), (8, 1), (15, 1), (22, 1), (23, 2), (30, 2), (50, 3), (60, 4)]
)
def test_fifteen_minute_units_midpoint_rule(policy: Policy, minutes: int, units: int) -> None:
    assert policy.billing_units(minutes) == units


def test_whole_units_only_when_configured(policy: Policy) -> None:
    spec = policy.spec.billing.model_copy(update={"partial_unit_minutes": 15})
    assert [units_for(m, spec) for m in (14, 15, 29, 30)] == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2026, 3, 3), date(2026, 3, 3), 0),
        (date(2026, 3, 3), date(2026, 3, 5), 2),  # Tue -> Thu
        (date(2026, 3, 6), date(2026, 3, 10), 2),  # Fri -> Tue over a weekend
        (date(2026, 3, 6), date(2026, 3, 8), 0),  # Fri -> Sun
        (date(2026, 3, 2), date(2026, 3, 16), 10),  # two weeks
    ],
)
def test_business_days(start: date, end: date, days: int) -> None:
    assert business_days_between(start, end) == days


def test_a_complete_billable_note_is_allowed_everywhere(policy: Policy, policies: dict[str, Policy]) -> None:
    for p in (policy, *policies.values()):
        d = p.check_note(billable())
        assert d.verdict is Verdict.ALLOW, (p.jurisdiction, d.to_dict())
        assert d.billing == {
            "code": "H0038",
            "modifiers": [],
            "minutes": 50,
            "units": 3,
            "billable_units": 3,
            "not_billable_activities": [],
        }
        assert "billing.missing-field" in d.rules_evaluated


def test_billing_rules_apply_only_to_billable_notes(policies: dict[str, Policy]) -> None:
    d = policies["TX"].check_note(NoteFacts(text=TEXT))
    assert d.billing is None
    assert not [r for r in d.rules_evaluated if r.startswith("billing.")]


@pytest.mark.parametrize(
    ("jurisdiction", "required"), [("TX", True), ("MN", True), ("VA", False), ("NJ", False)]
)
def test_recovery_plan_goal_is_required_in_tx_and_mn(
    policies: dict[str, Policy], jurisdiction: str, required: bool
) -> None:
    d = policies[jurisdiction].check_note(billable(goal=None, progress=" "))
    fields = sorted(v.field for v in d.violations if v.rule == "billing.missing-field" and v.field)
    assert fields == (["goal", "progress"] if required else [])
    assert d.verdict is (Verdict.BLOCK if required else Verdict.ALLOW)


def test_missing_fields_are_named(policy: Policy) -> None:
    d = policy.check_note(billable(location=None, credential="", start=None, end=None, minutes=50))
    assert {v.field for v in d.violations} == {"location", "credential", "start", "end", "date"}
    assert all(v.message == f"A billable note needs the {v.field} field." for v in d.violations)


def test_daily_cap_in_va_and_nj(policies: dict[str, Policy], policy: Policy) -> None:
    usage = BillingUsage(units_today=14)
    for j in ("VA", "NJ"):
        d = policies[j].check_note(billable(usage=usage))
        assert d.billing is not None and d.billing["billable_units"] == 2
        assert [v.rule for v in d.violations] == ["billing.daily-cap"]
        assert d.violations[0].message == "Daily limit of 16 units reached: 2 of 3 units can be billed."
    assert policy.check_note(billable(usage=usage)).verdict is Verdict.ALLOW  # no daily cap by default


def test_tx_rolling_period_cap(policies: dict[str, Policy]) -> None:
    d = policies["TX"].check_note(billable(usage=BillingUsage(units_in_period=103)))
    assert d.billing is not None and d.billing["billable_units"] == 1
    assert d.violations[0].rule == "billing.period-cap" and d.verdict is Verdict.WARN
    assert (
        policies["TX"].check_note(billable(usage=BillingUsage(units_in_period=101))).verdict is Verdict.ALLOW
    )


def test_va_yearly_hour_cap(policies: dict[str, Policy]) -> None:
    d = policies["VA"].check_note(billable(usage=BillingUsage(hours_in_year=899.75)))
    assert d.billing is not None and d.billing["billable_units"] == 1
    assert [v.rule for v in d.violations] == ["billing.yearly-cap"]


@pytest.mark.parametrize(
    ("jurisdiction", "size", "over"),
    [("VA", 10, False), ("VA", 11, True), ("TX", 12, False), ("TX", 13, True)],
)
def test_group_size_caps(policies: dict[str, Policy], jurisdiction: str, size: int, over: bool) -> None:
    d = policies[jurisdiction].check_note(billable(modality="group", group_size=size))
    assert d.billing is not None and d.billing["modifiers"] == ["HQ"]
    assert ("billing.group-size" in d.rules_fired) is over
    assert d.billing["billable_units"] == (0 if over else 3)


def test_nj_sud_program_modifier(policies: dict[str, Policy]) -> None:
    d = policies["NJ"].check_note(billable(program="sud", modality="group", group_size=6))
    assert d.billing is not None and d.billing["modifiers"] == ["HQ", "HF"]


def test_va_activities_allowed_but_not_billable(policies: dict[str, Policy], policy: Policy) -> None:
    only = policies["VA"].check_note(billable(activities=["transportation", "outreach"]))
    assert only.verdict is Verdict.WARN and only.rules_fired == ("billing.not-billable",)
    assert only.billing is not None and only.billing["billable_units"] == 0
    mixed = policies["VA"].check_note(billable(activities=["transportation", "recovery-coaching"]))
    assert mixed.verdict is Verdict.ALLOW and mixed.billing is not None
    assert mixed.billing["not_billable_activities"] == ["transportation"]
    assert policy.check_note(billable(activities=["transportation"])).verdict is Verdict.ALLOW


def test_under_one_unit(policy: Policy) -> None:
    d = policy.check_note(billable(end=datetime(2026, 3, 3, 14, 7, tzinfo=CST)))
    assert d.rules_fired == ("billing.zero-units",) and d.verdict is Verdict.WARN


def test_notes_written_late(policy: Policy) -> None:
    on_time = billable(
        start=datetime(2026, 3, 6, 14, 0, tzinfo=CST),
        end=datetime(2026, 3, 6, 15, 0, tzinfo=CST),
        written_at=datetime(2026, 3, 10, 9, 0, tzinfo=CST),
    )  # Fri -> Tue
    assert policy.check_note(on_time).verdict is Verdict.ALLOW
    late = on_time.model_copy(update={"written_at": datetime(2026, 3, 11, 9, 0, tzinfo=CST)})
    d = policy.check_note(late)
    assert d.rules_fired == ("billing.late-note",)
    assert "written 3 business days after" in d.violations[0].message


def test_from_domain_records(policies: dict[str, Policy]) -> None:
    author = parse(
        PeerWorker,
        {
            "id": "peer-17",
            "name": {"given": "A", "family": "B"},
            "credential": "CPRS",
            "certification_level": "certified",
            "organization_id": "harbor",
            "last_supervision": "2026-02-20",
        },
    )
    encounter = parse(
        PeerEncounter,
        {
            "id": "enc-1",
            "participant_id": "p-1",
            "peer_id": "peer-17",
            "start": "2026-03-03T14:00:00-06:00",
            "end": "2026-03-03T14:38:00-06:00",
            "setting": "community",
            "location_name": "Harbor drop-in center",
            "activities": ["recovery-coaching"],
        },
    )
    note = parse(
        PeerNote,
        {
            "id": "note-1",
            "participant_id": "p-1",
            "author_id": "peer-17",
            "encounter_id": "enc-1",
            "audience": "care-team",
            "text": TEXT,
            "written_at": "2026-03-03T17:00:00-06:00",
            "summary": "Coaching on stress",
            "goal": "Keep steady employment",
            "progress": "Uses breaks",
        },
    )
    at = datetime(2026, 3, 3, 18, 0, tzinfo=EST)
    d = policies["TX"].check_note(note, author=author, encounter=encounter, at=at)
    assert d.verdict is Verdict.ALLOW, d.to_dict()
    assert d.billing is not None and d.billing["units"] == 3  # 38 minutes
    assert {"supervision.cosign", "supervision.recency", "billing.missing-field"} <= set(d.rules_evaluated)
    no_goal = note.model_copy(update={"goal": None})
    assert (
        policies["TX"].check_note(no_goal, author=author, encounter=encounter, at=at).verdict is Verdict.BLOCK
    )


# --- supervision ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "cosigned", "held"),
    [
        ("trainee", False, True),
        ("provisional", False, True),
        ("provisional", True, False),
        ("certified", False, False),
    ],
)
def test_cosign_holds(policy: Policy, level: str, cosigned: bool, held: bool) -> None:
    d = policy.check_note(
        NoteFacts(text=TEXT, certification_level=CertificationLevel(level), cosigned=cosigned)
    )
    assert (d.verdict is Verdict.HOLD) is held
    assert "supervision.cosign" in d.rules_evaluated


def test_supervision_not_judged_when_level_unknown_or_not_a_peer(policy: Policy) -> None:
    assert "supervision.cosign" not in policy.check_note(NoteFacts(text=TEXT)).rules_evaluated
    d = policy.check_note(NoteFacts(text=TEXT, role=Role.PEER_SUPERVISOR, certification_level="supervisor"))
    assert not [r for r in d.rules_evaluated if r.startswith("supervision.")]


@pytest.mark.parametrize(
    ("jurisdiction", "days_ago", "overdue"),
    [(None, 7, False), (None, 8, True), ("TX", 20, False), ("TX", 32, True)],
)
def test_supervision_recency_for_certified_peers(
    policy: Policy, policies: dict[str, Policy], jurisdiction: str | None, days_ago: int, overdue: bool
) -> None:
    p = policies[jurisdiction] if jurisdiction else policy
    at = datetime(2026, 3, 31, 23, 30, tzinfo=CST)  # already April 1st in UTC: the local date counts
    facts = NoteFacts(
        text=TEXT,
        certification_level="certified",
        at=at,
        last_supervision=date(2026, 3, 31) - timedelta(days=days_ago),
    )
    d = p.check_note(facts)
    assert ("supervision.recency" in d.rules_fired) is overdue
    if overdue:
        assert d.verdict is Verdict.WARN and f"{days_ago} days ago" in d.violations[0].message
