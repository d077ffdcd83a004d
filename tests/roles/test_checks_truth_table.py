"""Every fixed check of the real rule files: one case that fires it and a near miss that must not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.domain import ConsentRecord, Participant, PeerWorker, parse
from bridge.roles import Decision, NoteFacts, Policy
from bridge.roles.checks import PLACEHOLDERS

MT = timezone(timedelta(hours=-7))
AT = datetime(2026, 3, 4, 16, 0, tzinfo=MT)
TEXT = "Worked on her recovery plan goals."
BILLABLE: dict[str, Any] = {
    "text": TEXT,
    "billable": True,
    "participant_id": "p-1",
    "service_type": "recovery-coaching",
    "activities": ["recovery-coaching"],
    "start": "2026-03-03T14:00:00-07:00",
    "end": "2026-03-03T14:45:00-07:00",
    "location": "Center",
    "modality": "individual",
    "method": "telehealth",
    "summary": "Goals",
    "goal": "Housing",
    "progress": "Applied",
    "signer": "peer-1",
    "credential": "CPRS",
    "written_at": "2026-03-03T18:00:00-07:00",
}


def note(jurisdiction: str | None = None, **changes: Any) -> Callable[[dict[str | None, Policy]], Decision]:
    def run(policies: dict[str | None, Policy]) -> Decision:
        return policies[jurisdiction].check_note(NoteFacts.model_validate(changes))

    return run


def bill(jurisdiction: str | None = None, **changes: Any) -> Callable[[dict[str | None, Policy]], Decision]:
    return note(jurisdiction, **{**BILLABLE, **changes})


def consent(recipient: str) -> ConsentRecord:
    return parse(
        ConsentRecord,
        {"id": "c-1", "participant_id": "p-1", "recipient": recipient, "start": "2026-01-01T00:00:00-07:00"},
    )


PEER = {
    "id": "peer-1",
    "name": {"given": "A", "family": "B"},
    "credential": "CPRS",
    "certification_level": "certified",
    "organization_id": "org",
    "endorsements": ["recovery-support"],
}


def assign(program: str, **person: Any) -> Callable[[dict[str | None, Policy]], Decision]:
    def run(policies: dict[str | None, Policy]) -> Decision:
        participant = parse(Participant, {"id": "p-1", "name": {"given": "C", "family": "D"}, **person})
        return policies[None].check_assignment(parse(PeerWorker, PEER), participant, program)

    return run


def restricted(recipient: str, consent_for: str | None) -> Callable[[dict[str | None, Policy]], Decision]:
    consents = [consent(consent_for).model_dump()] if consent_for else []
    return note(
        None,
        text=TEXT,
        audience="restricted",
        recipient=recipient,
        participant_id="p-1",
        consents=consents,
        at=AT,
    )


# check id -> (fires, near miss)
CASES: dict[
    str, tuple[Callable[[dict[str | None, Policy]], Decision], Callable[[dict[str | None, Policy]], Decision]]
] = {
    "audience.peer-team": (
        note(text=TEXT, audience="peer-team", recipient="clinic", at=AT),
        note(text=TEXT, audience="care-team", recipient="clinic", at=AT),
    ),
    "privacy.consent-required": (restricted("clinic", None), restricted("clinic", "clinic")),
    "billing.missing-field": (bill("TX", goal=None), bill(None, goal=None)),  # goal required in TX only
    "billing.zero-units": (bill(end="2026-03-03T14:07:00-07:00"), bill(end="2026-03-03T14:08:00-07:00")),
    "billing.daily-cap": (bill("VA", usage={"units_today": 15}), bill("VA", usage={"units_today": 13})),
    "billing.period-cap": (
        bill("TX", usage={"units_in_period": 102}),
        bill("TX", usage={"units_in_period": 101}),
    ),
    "billing.yearly-cap": (
        bill("VA", usage={"hours_in_year": 899.5}),
        bill("VA", usage={"hours_in_year": 899.25}),
    ),
    "billing.group-size": (
        bill("VA", modality="group", group_size=11),
        bill("TX", modality="group", group_size=11),
    ),
    "billing.not-billable": (
        bill("VA", activities=["outreach"]),
        bill("VA", activities=["outreach", "advocacy"]),
    ),
    "billing.late-note": (
        bill(written_at="2026-03-06T09:00:00-07:00"),  # Tue -> Fri: 3 business days
        bill(written_at="2026-03-05T23:00:00-07:00"),  # Tue -> Thu: 2
    ),
    "supervision.cosign": (
        note(text=TEXT, certification_level="trainee"),
        note(text=TEXT, certification_level="trainee", cosigned=True),
    ),
    "supervision.recency": (
        note(
            "TX",
            text=TEXT,
            certification_level="provisional",
            cosigned=True,
            at=AT,
            last_supervision=date(2026, 2, 24),
        ),  # 8 days: weekly while provisional
        note("TX", text=TEXT, certification_level="certified", at=AT, last_supervision=date(2026, 2, 24)),
    ),
    "assignment.endorsement": (assign("mental-health"), assign("sud")),
    "assignment.dual-relationship": (
        assign("sud", employer="Acme", household_id="h-1", family_ids=["peer-1"]),
        assign("sud", family_ids=["peer-2"]),
    ),
    "escalation.crisis-note": (
        note(text=TEXT, kind="crisis"),
        note(text=TEXT, kind="crisis", escalated=True),
    ),
}


@pytest.fixture(scope="module")
def by_jurisdiction(policy: Policy, policies: dict[str, Policy]) -> dict[str | None, Policy]:
    return {None: policy, **policies}


def test_every_check_has_cases() -> None:
    assert set(CASES) == set(PLACEHOLDERS)


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_check_fires_and_near_miss_does_not(by_jurisdiction: dict[str | None, Policy], check_id: str) -> None:
    fires, near_miss = CASES[check_id]
    fired = fires(by_jurisdiction)
    assert check_id in fired.rules_fired, fired.to_dict()
    assert all(v.message and "{" not in v.message for v in fired.violations)
    missed = near_miss(by_jurisdiction)
    assert check_id in missed.rules_evaluated
    assert check_id not in missed.rules_fired, missed.to_dict()
