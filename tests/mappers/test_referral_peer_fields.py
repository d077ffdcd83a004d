"""``referral_from_fhir``: goals, programs and appointments from every place a referral carries
them (local Task.input codes, ServiceRequest.occurrence[x], referenced Goal / Appointment /
HealthcareService), de-duplicated; values that are valid FHIR but no appointment are left out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.mappers import referral_from_fhir
from bridge.mappers.codes import LOCAL_REFERRAL_INPUT

CENTRAL = timezone(timedelta(hours=-6))


def _input(code: str, **value: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": LOCAL_REFERRAL_INPUT, "code": code}]}, **value}


TASK: dict[str, Any] = {
    "resourceType": "Task",
    "id": "t-1",
    "status": "requested",
    "intent": "order",
    "focus": {"reference": "ServiceRequest/sr-1"},
    "input": [
        _input("goal", valueString="Reconnect with family"),
        _input("program", valueString="Warm handoff"),
        _input("appointment", valueDateTime="2026-12-10T14:00:00-06:00"),
    ],
}


def sr(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p-1"},
        **elements,
    }


SUPPORTING: list[dict[str, Any]] = [
    {
        "resourceType": "Goal",
        "id": "g-1",
        "lifecycleStatus": "active",
        "description": {"text": "Find housing"},
    },
    # the same goal twice (Task.input and a Goal resource) is shown once
    {
        "resourceType": "Goal",
        "id": "g-2",
        "lifecycleStatus": "active",
        "description": {"text": "Reconnect with family"},
    },
    {"resourceType": "HealthcareService", "id": "hs-1", "name": "Harbor peer program"},
    {
        "resourceType": "Appointment",
        "id": "a-1",
        "status": "booked",
        "start": "2026-12-03T10:00:00-06:00",
        "description": "First meeting",
        "participant": [{"status": "accepted"}],
    },
    {
        "resourceType": "Appointment",
        "id": "a-2",
        "status": "cancelled",
        "start": "2026-12-04T10:00:00-06:00",
        "participant": [{"status": "declined"}],
    },
]


def test_every_source_is_read_and_duplicates_fold() -> None:
    ref = referral_from_fhir(
        TASK, sr(occurrenceDateTime="2026-12-03T10:00:00-06:00"), None, "clinic", supporting=SUPPORTING
    )
    assert ref.goals == ("Reconnect with family", "Find housing")
    assert ref.programs == ("Warm handoff", "Harbor peer program")
    assert [(a.start, a.description) for a in ref.appointments] == [
        (datetime(2026, 12, 3, 10, 0, tzinfo=CENTRAL), "First meeting"),  # occurrence = the booked one
        (datetime(2026, 12, 10, 14, 0, tzinfo=CENTRAL), None),
    ]  # the cancelled appointment is not offered


@pytest.mark.parametrize(
    ("elements", "expected"),
    [
        ({"occurrenceDateTime": "2026-12-05T09:30:00-06:00"}, [datetime(2026, 12, 5, 9, 30, tzinfo=CENTRAL)]),
        (
            {"occurrencePeriod": {"start": "2026-12-05T09:30:00-06:00"}},
            [datetime(2026, 12, 5, 9, 30, tzinfo=CENTRAL)],
        ),
        ({"occurrenceDateTime": "2026-12-05"}, []),  # a date: valid FHIR, not an appointment time
        ({"occurrenceDateTime": "2026-12"}, []),
        ({}, []),
    ],
)
def test_the_requested_occurrence_is_an_appointment_when_it_has_a_time(
    elements: dict[str, Any], expected: list[datetime]
) -> None:
    task = {**TASK, "input": []}
    ref = referral_from_fhir(task, sr(**elements), None, "clinic")
    assert [a.start for a in ref.appointments] == expected
