"""Bad input raises MappingError naming the field; nothing is half-built."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from bridge.domain import Audience, ContactMethod, NoteStatus, PeerEncounter, ReferralStatus, Setting
from bridge.errors import InputError, MappingError
from bridge.mappers import (
    MappingContext,
    build_submission_bundle,
    encounter_to_fhir,
    note_to_document_reference,
    organization_to_fhir,
    patient_reference_for,
    practitioner_to_fhir,
    referral_from_fhir,
    referral_to_fhir,
    task_with_status,
)

from . import samples as s


def _constructed(**kw: Any) -> PeerEncounter:
    """A session that skipped the record's own validation (e.g. loaded from an old store row)."""
    fields = s.encounter().model_dump() | kw
    return PeerEncounter.model_construct(**fields)


def _task_and_sr(**task_kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    sr, task = referral_to_fhir(s.referral())
    return task | task_kw, sr


CASES: list[tuple[str, Callable[[], object], str]] = [
    # missing billable fields
    ("billable note without goal", lambda: s.bundle(note=s.note(goal=None)), "note.goal"),
    ("billable note without summary", lambda: s.bundle(note=s.note(summary="  ")), "note.summary"),
    ("billable note without progress", lambda: s.bundle(note=s.note(progress=None)), "note.progress"),
    # time
    (
        "end before start",
        lambda: encounter_to_fhir(s.ctx(), _constructed(end=s.encounter().start - timedelta(minutes=5))),
        "encounter.end",
    ),
    ("naive now", lambda: s.ctx(now=datetime(2026, 11, 26, 16, 30)), "now"),
    # unknown activity / inconsistent session
    (
        "unknown activity",
        lambda: encounter_to_fhir(s.ctx(), _constructed(activities=("juggling",))),
        "encounter.activities.0",
    ),
    ("no activity", lambda: encounter_to_fhir(s.ctx(), _constructed(activities=())), "encounter.activities"),
    (
        "virtual face-to-face",
        lambda: encounter_to_fhir(
            s.ctx(), s.encounter(setting=Setting.VIRTUAL, method=ContactMethod.FACE_TO_FACE)
        ),
        "encounter.method",
    ),
    # malformed identifiers and references
    (
        "identifier system not a URI",
        lambda: s.ctx(identifier_system="harbor recovery"),
        "organization.identifier_system",
    ),
    (
        "identifier system with a bar",
        lambda: s.ctx(identifier_system="https://x.example.org/a|b"),
        "organization.identifier_system",
    ),
    (
        "patient reference malformed",
        lambda: s.ctx(patient_reference="Patient/has space"),
        "patient_reference",
    ),
    ("patient reference other type", lambda: s.ctx(patient_reference="Group/1"), "patient_reference"),
    ("organization npi", lambda: s.ctx(organization_npi="12345"), "organization.npi"),
    (
        "no patient for a session",
        lambda: build_submission_bundle(
            s.ctx(patient_reference=None), encounter=s.encounter(), participant=s.participant(), peer=s.peer()
        ),
        "patient_reference",
    ),
    (
        "no patient for a session's Encounter",
        lambda: encounter_to_fhir(s.ctx(patient_reference=None), s.encounter()),
        "patient_reference",
    ),
    # what must not leave the bridge
    ("peer-team note", lambda: s.bundle(note=s.note(audience=Audience.PEER_TEAM)), "note.audience"),
    ("draft note", lambda: s.bundle(note=s.note(status=NoteStatus.DRAFT)), "note.status"),
    # records that do not belong together
    ("note of another peer", lambda: s.bundle(note=s.note(author_id="peer-2")), "note.author_id"),
    (
        "note of another participant",
        lambda: s.bundle(note=s.note(participant_id="pt-2")),
        "note.participant_id",
    ),
    ("note of another session", lambda: s.bundle(note=s.note(encounter_id="enc-2")), "note.encounter_id"),
    ("session of another peer", lambda: s.bundle(peer=s.peer("peer-2")), "encounter.peer_id"),
    ("co-signed note without co-signer", lambda: s.bundle(note=s.cosigned_note()), "cosigner"),
    (
        "wrong co-signer",
        lambda: s.bundle(note=s.cosigned_note(), cosigner=s.supervisor("sup-2")),
        "note.cosigner_id",
    ),
    ("co-signer without note", lambda: s.bundle(note=None, cosigner=s.supervisor()), "cosigner"),
    (
        "note of a session, no session given",
        lambda: note_to_document_reference(s.ctx(), s.note(), peer=s.peer()),
        "encounter",
    ),
    (
        "session of a referral, no referral",
        lambda: s.bundle(encounter=s.encounter(referral_id="ref-1")),
        "referral",
    ),
    (
        "referral of another session",
        lambda: s.bundle(encounter=s.encounter(referral_id="ref-1"), referral=s.referral("ref-2")),
        "encounter.referral_id",
    ),
    (
        "referral from another endpoint",
        lambda: s.bundle(encounter=s.encounter(referral_id="ref-1"), referral=s.referral(endpoint="other")),
        "referral.endpoint",
    ),
    (
        "referral given to an unrelated session",
        lambda: s.bundle(referral=s.referral()),
        "encounter.referral_id",
    ),
    # referrals and Tasks
    (
        "task status outside the bound set",
        lambda: referral_from_fhir(*_task_and_sr(status="ready"), None, "clinic"),
        "task.status",
    ),
    (
        "task status not FHIR",
        lambda: referral_from_fhir(*_task_and_sr(status=7), None, "clinic"),
        "task.status",
    ),
    (
        "task focus elsewhere",
        lambda: referral_from_fhir(
            *_task_and_sr(focus={"reference": "ServiceRequest/other"}), None, "clinic"
        ),
        "task.focus",
    ),
    (
        "task authoredOn without time",
        lambda: referral_from_fhir(*_task_and_sr(authoredOn="2026-11-20"), None, "clinic"),
        "task.authoredOn",
    ),
    (
        "patient without a name",
        lambda: referral_from_fhir(*_task_and_sr(), {"resourceType": "Patient", "id": "pat-77"}, "clinic"),
        "patient.name",
    ),
    (
        "referral without patient",
        lambda: referral_to_fhir(s.referral(patient_id=None)),
        "referral.patient_id",
    ),
    (
        "unknown business status",
        lambda: referral_to_fhir(s.referral(business_status="9.9")),
        "referral.business_status",
    ),
    ("unknown priority", lambda: referral_to_fhir(s.referral(priority="whenever")), "referral.priority"),
    (
        "decline without reason",
        lambda: task_with_status(referral_to_fhir(s.referral())[1], "rejected", now=s.NOW),
        "reason",
    ),
    (
        "unknown status",
        lambda: task_with_status(referral_to_fhir(s.referral())[1], "ready", now=s.NOW),
        "status",
    ),
    (
        "output not a delivered service",
        lambda: task_with_status(
            referral_to_fhir(s.referral())[1], ReferralStatus.COMPLETED, now=s.NOW, outputs=["Patient/1"]
        ),
        "outputs.0",
    ),
    (
        "naive time for a Task",
        lambda: task_with_status(referral_to_fhir(s.referral())[1], "accepted", now=datetime(2026, 1, 1)),
        "now",
    ),
]


@pytest.mark.parametrize(("case", "call", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_the_field(case: str, call: Callable[[], object], field: str) -> None:
    with pytest.raises(MappingError) as info:
        call()
    assert info.value.field == field
    assert isinstance(info.value, InputError)


def test_error_messages_carry_no_phi() -> None:
    note = s.note(goal=None, text="Avery Quinn told me something private")
    with pytest.raises(MappingError) as info:
        s.bundle(note=note)
    assert "Avery" not in str(info.value) and "private" not in str(info.value)


def test_missing_patient_identifier_names_the_field() -> None:
    with pytest.raises(InputError) as info:
        patient_reference_for(s.participant(), "elsewhere")
    assert info.value.field == "participant.identifiers"


def test_context_from_settings_checks_too() -> None:
    from bridge.config import OrganizationSettings

    org = OrganizationSettings(
        id="harbor-recovery", name="Harbor", identifier_system="https://h.example.org/id"
    )
    ctx = MappingContext.from_organization(org, endpoint="clinic", patient_reference="Patient/1", now=s.NOW)
    assert ctx.identifier("encounter", "e-1") == {
        "system": "https://h.example.org/id/encounter",
        "value": "e-1",
    }


def test_bundle_validation_names_the_entry_element() -> None:
    from bridge.mappers.context import validated_bundle

    bundle = s.bundle()
    bundle["entry"][3]["resource"]["status"] = 7
    with pytest.raises(MappingError) as info:
        validated_bundle(bundle)
    assert info.value.field == "bundle.entry.3.resource.status"
    bundle = s.bundle()
    bundle["entry"][0]["request"]["ifNoneExist"] = ["not", "a", "string"]
    with pytest.raises(MappingError) as info:
        validated_bundle(bundle)
    assert info.value.field.startswith("bundle.entry.0.request.ifNoneExist")


def test_what_concerns_no_patient_needs_none() -> None:
    no_patient = s.ctx(patient_reference=None)
    assert organization_to_fhir(no_patient)["identifier"][0]["value"] == "harbor-recovery"
    assert practitioner_to_fhir(no_patient, s.peer())["identifier"][0]["value"] == "peer-1"
