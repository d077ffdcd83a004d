"""Audience, 42 CFR Part 2 consent, DS4P labels and the minimum-necessary peer view."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.domain import ConsentRecord, PeerNote, parse
from bridge.errors import ConsentRequiredError, InputError, ScopeViolationError
from bridge.roles import Decision, NoteFacts, Policy, Severity, Verdict, Violation

PT = timezone(timedelta(hours=-8))
AT = datetime(2026, 3, 9, 16, 30, tzinfo=PT)


def note(audience: str, sud_related: bool = True) -> PeerNote:
    return parse(
        PeerNote,
        {
            "id": "note-9",
            "participant_id": "p-9",
            "author_id": "peer-1",
            "audience": audience,
            "text": "Reviewed her recovery plan and celebrated her new job.",
            "written_at": "2026-03-09T15:00:00-08:00",
            "sud_related": sud_related,
        },
    )


def consent(**changes: Any) -> ConsentRecord:
    data = {
        "id": "consent-1",
        "participant_id": "p-9",
        "recipient": "clinic",
        "start": "2026-01-01T00:00:00-08:00",
    }
    data.update(changes)
    return parse(ConsentRecord, data)


def codes(labels: tuple[dict[str, str], ...]) -> list[str]:
    return [label["code"] for label in labels]


def test_peer_team_notes_never_leave(policy: Policy) -> None:
    d = policy.check_disclosure(note("peer-team"), "clinic", [consent()], AT)
    assert not d.allowed and d.verdict is Verdict.BLOCK
    assert d.decision.rules_fired == ("audience.peer-team",)
    assert d.labels == () and d.notice is None
    assert "clinic" in d.decision.violations[0].message


def test_restricted_with_consent_is_labeled_with_notice(policy: Policy) -> None:
    d = policy.check_disclosure(note("restricted"), "clinic", [consent()], AT)
    assert d.allowed and d.consent_id == "consent-1"
    assert codes(d.labels) == ["R", "SUD", "42CFRPart2", "NORDSCLCD"]
    assert d.notice == "42 CFR part 2 prohibits unauthorized use or disclosure of these records."
    assert d.to_dict()["labels"][2]["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"


@pytest.mark.parametrize(
    "consents",
    [
        [],
        [consent(recipient="other-clinic")],
        [consent(participant_id="p-other")],
        [consent(end="2026-03-01T00:00:00-08:00")],
        [consent(revoked_at="2026-03-09T16:00:00-08:00")],  # revoked 30 minutes before
        [consent(start="2026-03-10T00:00:00-08:00")],  # not yet valid
        [consent(purpose="PAY")],
    ],
    ids=["none", "other-recipient", "other-person", "expired", "revoked", "future", "other-purpose"],
)
def test_restricted_without_a_valid_consent_is_held(policy: Policy, consents: list[ConsentRecord]) -> None:
    d = policy.check_disclosure(note("restricted"), "clinic", consents, AT)
    assert not d.allowed and d.verdict is Verdict.HOLD
    assert d.decision.rules_fired == ("privacy.consent-required",)
    assert d.labels == () and d.consent_id is None


def test_care_team_labels(policy: Policy) -> None:
    sud = policy.check_disclosure(note("care-team"), "clinic", [], AT)
    assert sud.allowed and codes(sud.labels) == ["R", "SUD", "42CFRPart2", "NORDSCLCD"] and sud.notice
    plain = policy.check_disclosure(note("care-team", sud_related=False), "clinic", [], AT)
    assert plain.allowed and codes(plain.labels) == ["N"] and plain.notice is None


def test_check_note_judges_audience_only_when_a_recipient_is_named(policy: Policy) -> None:
    text = "Talked about her week."
    assert policy.check_note(NoteFacts(text=text, audience="peer-team")).verdict is Verdict.ALLOW
    sent = policy.check_note(NoteFacts(text=text, audience="peer-team", recipient="clinic", at=AT))
    assert sent.verdict is Verdict.BLOCK
    with pytest.raises(InputError) as info:
        policy.check_note(NoteFacts(text=text, audience="restricted", recipient="clinic"))
    assert info.value.field == "at"


def test_raise_for_verdict(policy: Policy) -> None:
    with pytest.raises(ScopeViolationError) as info:
        policy.check_note(NoteFacts(text="Told her to stop her Xanax.")).raise_for_verdict()
    assert info.value.violations[0]["rule"] == "content.medication-change"
    policy.check_note(NoteFacts(text="She said she wants to die.")).raise_for_verdict()  # hold: no raise
    held = policy.check_disclosure(note("restricted"), "clinic", [], AT).decision
    assert held.verdict is Verdict.HOLD
    held.raise_for_verdict()  # held, not refused
    # a deployment that makes missing consent blocking gets the consent error, not a scope error
    refused = Decision.of([Violation("privacy.consent-required", Severity.BLOCK, "no consent")], [])
    with pytest.raises(ConsentRequiredError):
        refused.raise_for_verdict()


# --- minimum necessary -------------------------------------------------------------------------

TASK: dict[str, Any] = {
    "resourceType": "Task",
    "id": "t-1",
    "meta": {"versionId": "3", "lastUpdated": "2026-03-09T10:00:00Z", "source": "#ehr"},
    "status": "requested",
    "intent": "order",
    "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
    "focus": {"reference": "ServiceRequest/sr-1"},
    "for": {"reference": "Patient/pat-1"},
    "authoredOn": "2026-03-09T09:55:00Z",
    "requester": {"reference": "Practitioner/dr-1", "display": "Dr. Rivera"},
    "owner": {"reference": "Organization/harbor"},
    "note": [{"text": "Pt with OUD, UDS + fentanyl, on buprenorphine 16 mg"}],
    "input": [{"type": {"text": "chart"}, "valueString": "see labs"}],
}
SERVICE_REQUEST: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "id": "sr-1",
    "status": "active",
    "intent": "order",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "461481000124109"}]},
    "subject": {"reference": "Patient/pat-1"},
    "reasonCode": [
        {
            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}],
            "text": "Wants support staying in recovery after an overdose",
        }
    ],
    "reasonReference": [{"reference": "Condition/c-1"}],
    "supportingInfo": [{"reference": "Observation/lab-1"}],
    "note": [{"text": "Counseling notes attached; PHQ-9 = 19"}],
    "occurrenceDateTime": "2026-03-12T10:00:00-06:00",
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-77"}],
    "name": [{"given": ["Dana"], "family": "Example"}],
    "telecom": [{"system": "phone", "value": "555-0100"}],
    "birthDate": "1990-02-03",
    "maritalStatus": {"text": "Divorced"},
    "communication": [{"language": {"text": "Spanish"}, "preferred": True}],
}
SUPPORTING: list[dict[str, Any]] = [
    {
        "resourceType": "Observation",
        "id": "lab-1",
        "category": [{"coding": [{"code": "laboratory"}]}],
        "valueString": "fentanyl positive",
    },
    {"resourceType": "Condition", "id": "c-1", "code": {"text": "Opioid use disorder, severe"}},
    {
        "resourceType": "MedicationStatement",
        "id": "m-1",
        "medicationCodeableConcept": {"text": "buprenorphine"},
    },
    {"resourceType": "DocumentReference", "id": "d-1", "description": "Counseling note"},
    {
        "resourceType": "Appointment",
        "id": "a-1",
        "status": "booked",
        "start": "2026-03-12T10:00:00-06:00",
        "description": "Intake with peer team",
        "comment": "on MAT, UDS pending",
        "participant": [{"actor": {"reference": "Patient/pat-1", "display": "Dana"}}],
    },
    {
        "resourceType": "Goal",
        "id": "g-1",
        "lifecycleStatus": "active",
        "description": {"text": "Stable housing by summer", "coding": [{"code": "Z59.0"}]},
    },
    {"resourceType": "HealthcareService", "id": "hs-1", "name": "Harbor Recovery peer program"},
]


@pytest.fixture(scope="module")
def view(policy: Policy) -> dict[str, Any]:
    return policy.peer_view(
        task=TASK, service_request=SERVICE_REQUEST, patient=PATIENT, supporting=SUPPORTING
    )


def test_peer_view_keeps_what_a_peer_needs(view: dict[str, Any]) -> None:
    assert view["task"]["status"] == "requested" and view["task"]["meta"] == {
        "versionId": "3",
        "lastUpdated": "2026-03-09T10:00:00Z",
    }
    assert view["task"]["requester"]["display"] == "Dr. Rivera"
    # free text a clinician writes about the person stays out, however plain it reads (issue 10)
    assert "reasonCode" not in view["service_request"]
    assert view["service_request"]["occurrenceDateTime"] == "2026-03-12T10:00:00-06:00"
    assert view["patient"] == {
        "resourceType": "Patient",
        "id": "pat-1",
        "name": [{"given": ["Dana"], "family": "Example"}],
        "telecom": [{"system": "phone", "value": "555-0100"}],
        "birthDate": "1990-02-03",
        "communication": [{"language": {"text": "Spanish"}, "preferred": True}],
    }
    kept = {r["resourceType"]: r for r in view["supporting"]}
    assert set(kept) == {"Appointment", "Goal", "HealthcareService"}
    assert kept["Goal"] == {
        "resourceType": "Goal",
        "id": "g-1",
        "lifecycleStatus": "active",
        "description": {"text": "Stable housing by summer"},
    }
    assert kept["Appointment"]["participant"] == [{"actor": {"display": "Dana"}}]


def test_peer_view_drops_clinical_detail(view: dict[str, Any]) -> None:
    assert [(d["resourceType"], d["id"]) for d in view["dropped"]] == [
        ("Observation", "lab-1"),
        ("Condition", "c-1"),
        ("MedicationStatement", "m-1"),
        ("DocumentReference", "d-1"),
    ]
    kept = json.dumps({k: view[k] for k in ("task", "service_request", "patient", "supporting")})
    for private in (
        "F11.20",
        "fentanyl",
        "buprenorphine",
        "UDS",
        "PHQ",
        "Counseling",
        "MRN-77",
        "Divorced",
        "Z59",
    ):
        assert private not in kept, private
    dropped = view["dropped_elements"]["ServiceRequest"]
    assert dropped == ["note", "reasonCode", "reasonReference", "supportingInfo"]
    assert "comment" in view["dropped_elements"]["Appointment"]


def test_peer_view_without_patient(policy: Policy) -> None:
    view = policy.peer_view(task=TASK, service_request=SERVICE_REQUEST)
    assert view["patient"] is None and view["supporting"] == [] and view["dropped"] == []


def test_check_note_reports_the_disclosure(policy: Policy) -> None:
    facts = NoteFacts(
        text="Reviewed her recovery plan.",
        audience="restricted",
        recipient="clinic",
        participant_id="p-9",
        consents=(consent(),),
        at=AT,
    )
    d = policy.check_note(facts)
    assert d.verdict is Verdict.ALLOW
    assert d.disclosure is not None and d.disclosure["allowed"] and d.disclosure["consent_id"] == "consent-1"
    assert [label["code"] for label in d.to_dict()["disclosure"]["labels"]] == [
        "R",
        "SUD",
        "42CFRPart2",
        "NORDSCLCD",
    ]
    assert policy.check_note(NoteFacts(text="Reviewed her recovery plan.")).disclosure is None
