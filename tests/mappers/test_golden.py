"""Every mapper output against golden FHIR JSON (compared parsed). Regenerate: UPDATE_GOLDEN=1."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from bridge.domain import Audience, ContactMethod, ReferralStatus
from bridge.mappers import (
    build_submission_bundle,
    encounter_to_fhir,
    encounter_to_procedure,
    note_to_document_reference,
    note_to_provenance,
    organization_to_fhir,
    practitioner_to_fhir,
    referral_to_fhir,
    task_with_status,
)

from . import samples as s

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _bundle_full() -> dict[str, Any]:
    return build_submission_bundle(
        s.ctx(),
        encounter=s.encounter(referral_id="ref-1"),
        participant=s.participant(),
        peer=s.peer(),
        note=s.cosigned_note(),
        cosigner=s.supervisor(),
        referral=s.referral(requester_ref="Practitioner/dr-patel"),
        notify_requester=True,
    )


def _bundle_restricted_no_encounter() -> dict[str, Any]:
    return build_submission_bundle(
        s.ctx(patient_reference="Patient?identifier=urn:oid:1.2.3.4.5.1%7CMRN-1001"),
        encounter=s.encounter(),
        participant=s.participant(),
        peer=s.peer(),
        note=s.note(audience=Audience.RESTRICTED),
        send_encounter=False,
    )


def _bundle_encounter_only_not_sud() -> dict[str, Any]:
    return build_submission_bundle(
        s.ctx(), encounter=s.group_encounter(), participant=s.participant(), peer=s.peer(), sud_related=False
    )


def _task_completed() -> dict[str, Any]:
    _, task = referral_to_fhir(s.referral(status=ReferralStatus.IN_PROGRESS, business_status=None))
    return task_with_status(task, ReferralStatus.COMPLETED, now=s.NOW, outputs=["Procedure/proc-9"])


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "bundle_full": _bundle_full,
    "bundle_restricted_no_encounter": _bundle_restricted_no_encounter,
    "bundle_encounter_only_not_sud": _bundle_encounter_only_not_sud,
    "encounter_group_virtual": lambda: encounter_to_fhir(
        s.ctx(), s.group_encounter().model_copy(update={"method": ContactMethod.TELEHEALTH})
    ),
    "procedure": lambda: encounter_to_procedure(s.ctx(), s.encounter(), encounter_ref="Encounter/e-1"),
    "document_reference_preliminary": lambda: note_to_document_reference(
        s.ctx(), s.note(), peer=s.peer(), encounter=s.encounter(), encounter_ref="Encounter/e-1"
    ),
    "provenance_cosigned": lambda: note_to_provenance(s.ctx(), s.cosigned_note()),
    "practitioner_supervisor": lambda: practitioner_to_fhir(s.ctx(), s.supervisor()),
    "organization": lambda: organization_to_fhir(s.ctx(organization_npi="1497758544")),
    "service_request": lambda: referral_to_fhir(s.referral(consent_ref="Consent/c-1"))[0],
    "task_requested": lambda: referral_to_fhir(s.referral(), owner_ref="Organization/org-peer")[1],
    "task_completed": _task_completed,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_golden(case: str) -> None:
    produced = CASES[case]()
    path = GOLDEN / f"{case}.json"
    if UPDATE:
        path.write_text(json.dumps(produced, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(path.read_text())
    # through a JSON round trip: what goes on the wire, not Python objects
    assert json.loads(json.dumps(produced)) == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_validates_with_r4b(case: str) -> None:
    expected = json.loads((GOLDEN / f"{case}.json").read_text())
    get_fhir_model_class(expected["resourceType"]).model_validate(expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_record_same_output(case: str) -> None:
    assert CASES[case]() == CASES[case]()
