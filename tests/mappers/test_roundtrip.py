"""Referral -> ServiceRequest + Task -> Referral, and Task status updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from bridge.domain import Referral, ReferralAppointment, ReferralStatus
from bridge.mappers import referral_from_fhir, referral_id_for, referral_to_fhir, task_with_status
from bridge.mappers.codes import BSER_BUSINESS_STATUS

from . import samples as s

REFERRALS: dict[str, Referral] = {
    "minimal": s.referral(
        requester=None,
        reason=None,
        goals=(),
        programs=(),
        priority=None,
        business_status=None,
        authored_on=None,
    ),
    "typical": s.referral(),
    "accepted with appointments": s.referral(
        status=ReferralStatus.ACCEPTED,
        business_status="3.0",
        task_version="4",
        last_modified=datetime(2026, 11, 21, 10, 0, tzinfo=s.CENTRAL),
        appointments=(
            ReferralAppointment(
                start=datetime(2026, 12, 1, 9, 30, tzinfo=s.CENTRAL), description="Intake visit"
            ),
            ReferralAppointment(start=datetime(2026, 12, 8, 13, 0, tzinfo=s.CENTRAL)),
        ),
        consent_ref="Consent/c-9",
        priority="urgent",
    ),
    "rejected": s.referral(
        status=ReferralStatus.REJECTED, business_status="4.0", status_reason="No capacity"
    ),
    "due (Task.restriction.period.end)": s.referral(due=datetime(2026, 12, 10, 17, 0, tzinfo=s.CENTRAL)),
    "completed with outputs": s.referral(
        status=ReferralStatus.COMPLETED, business_status="7.0", outputs=("Procedure/p-1", "Encounter/e-1")
    ),
}


@pytest.mark.parametrize("name", sorted(REFERRALS))
def test_referral_round_trips(name: str) -> None:
    referral = REFERRALS[name]
    sr, task = referral_to_fhir(referral, owner_ref="Organization/peer-org")
    assert referral_from_fhir(task, sr, None, referral.endpoint, referral_id=referral.id) == referral


def test_patient_gives_minimum_necessary_contact() -> None:
    sr, task = referral_to_fhir(s.referral())
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "pat-77",
        "name": [{"use": "official", "family": "Quinn", "given": ["Avery", "J"]}],
        "telecom": [{"system": "email", "value": "a@example.org"}, {"system": "phone", "value": "555-0100"}],
        "birthDate": "1990-04-02",
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}]}, "preferred": True}
        ],
        "gender": "female",
    }
    referral = referral_from_fhir(task, sr, patient, "clinic")
    assert referral.contact is not None
    assert referral.contact.model_dump(mode="json") == {
        "name": {"given": "Avery", "family": "Quinn"},
        "phone": "555-0100",
        "birth_date": "1990-04-02",
        "preferred_language": "es",
    }
    assert referral.id == referral_id_for("clinic", "task-1")


def test_referral_ids_are_stable_and_distinct_per_endpoint() -> None:
    assert referral_id_for("clinic", "t1") == referral_id_for("clinic", "t1")
    assert referral_id_for("clinic", "t1") != referral_id_for("other", "t1")


def test_absolute_focus_reference_is_accepted() -> None:
    sr, task = referral_to_fhir(s.referral())
    task["focus"] = {"reference": "https://ehr.example.org/fhir/ServiceRequest/sr-1"}
    assert referral_from_fhir(task, sr, None, "clinic").service_request_id == "sr-1"


# (from, to, reason, expected businessStatus code)
TRANSITIONS: list[tuple[ReferralStatus, ReferralStatus, str | None, str | None]] = [
    (ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED, None, "3.0"),
    (ReferralStatus.REQUESTED, ReferralStatus.REJECTED, "Outside our service area", "4.0"),
    (ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS, None, None),
    (ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD, "Participant in hospital", None),
    (ReferralStatus.IN_PROGRESS, ReferralStatus.COMPLETED, None, "7.0"),
    (ReferralStatus.ACCEPTED, ReferralStatus.CANCELLED, "Participant moved", "6.0"),
]


@pytest.mark.parametrize(("start", "to", "reason", "business"), TRANSITIONS, ids=lambda v: str(v))
def test_task_with_status(
    start: ReferralStatus, to: ReferralStatus, reason: str | None, business: str | None
) -> None:
    _, task = referral_to_fhir(s.referral(status=start, business_status=None, status_reason="stale"))
    out = task_with_status(task, to, now=s.NOW, reason=reason)
    assert out["status"] == to.value
    assert out["lastModified"] == "2026-11-26T16:30:00-06:00"
    if business is None:
        assert "businessStatus" not in out
    else:
        assert out["businessStatus"]["coding"] == [
            {
                "system": BSER_BUSINESS_STATUS,
                "code": business,
                "display": out["businessStatus"]["coding"][0]["display"],
            }
        ]
    assert out.get("statusReason") == ({"text": reason} if reason else None)
    assert task["status"] == start.value  # the input is left alone


def test_start_then_complete_records_the_execution_period_and_outputs_once() -> None:
    _, task = referral_to_fhir(s.referral(status=ReferralStatus.ACCEPTED, business_status="3.0"))
    started = task_with_status(task, "in-progress", now=s.NOW, business_status="5.1.1")
    assert started["businessStatus"]["coding"][0]["code"] == "5.1.1"
    later = s.NOW.replace(day=28)
    done = task_with_status(started, "completed", now=later, outputs=["Procedure/p-1", "Procedure/p-1"])
    again = task_with_status(done, "completed", now=later, outputs=["Procedure/p-1", "Encounter/e-1"])
    assert done["executionPeriod"] == {
        "start": "2026-11-26T16:30:00-06:00",
        "end": "2026-11-28T16:30:00-06:00",
    }
    assert [o["valueReference"]["reference"] for o in again["output"]] == ["Procedure/p-1", "Encounter/e-1"]


def test_decline_before_start_has_no_execution_period() -> None:
    _, task = referral_to_fhir(s.referral())
    assert "executionPeriod" not in task_with_status(
        task, "cancelled", now=s.NOW, reason="Duplicate referral"
    )
