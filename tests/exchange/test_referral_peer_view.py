"""The peer view of a real referral: a clinician's ServiceRequest + Task at the sandbox EHR carrying
goals, an appointment, a program and a consent — and, on the same referral, a lab result, a
diagnosis, a medication list and clinical notes. After a poll, the stored inbox row holds the first
group and nothing of the second (read from the SQLite file itself, not from the function's answer).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from bridge.domain import ReferralStatus
from bridge.exchange.inbound import InboundSettings
from bridge.mappers.codes import LOCAL_REFERRAL_INPUT
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, settings_for

PERTAINS_TO_GOAL = "http://hl7.org/fhir/StructureDefinition/resource-pertainsToGoal"
# words that exist only in the clinical material attached to the referral
PRIVATE = (
    "fentanyl",
    "F11.20",
    "Opioid use disorder",
    "buprenorphine",
    "16 mg",
    "PHQ-9",
    "CBT homework",
    "HCV positive",
    "patient in detox",
)


def _put(base_url: str, resource: dict[str, Any]) -> None:
    r = httpx.put(f"{base_url}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30)
    r.raise_for_status()


def _input(code: str, **value: Any) -> dict[str, Any]:
    return {"type": {"coding": [{"system": LOCAL_REFERRAL_INPUT, "code": code}]}, **value}


def place_rich_referral(base_url: str, *, tag: str, owner_ref: str, patient_id: str) -> str:
    """What a clinician's system writes: the peer-relevant resources and the clinical ones, all
    reachable from the ServiceRequest / Task."""
    patient = {"reference": f"Patient/{patient_id}"}
    for res in (
        {
            "resourceType": "Observation",
            "id": f"lab-{tag}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "laboratory",
                        }
                    ]
                }
            ],
            "code": {"text": "Urine drug screen"},
            "subject": patient,
            "valueString": "positive for fentanyl",
        },
        {
            "resourceType": "Condition",
            "id": f"dx-{tag}",
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}],
                "text": "Opioid use disorder, severe",
            },
            "subject": patient,
        },
        {
            "resourceType": "List",
            "id": f"meds-{tag}",
            "status": "current",
            "mode": "snapshot",
            "title": "Medication list",
            "subject": patient,
            "entry": [{"item": {"display": "buprenorphine 16 mg daily"}}],
        },
        {
            "resourceType": "Goal",
            "id": f"goal-{tag}",
            "lifecycleStatus": "active",
            "description": {"text": "Find stable housing by spring"},
            "subject": patient,
        },
        {
            "resourceType": "Appointment",
            "id": f"appt-{tag}",
            "status": "booked",
            "start": "2026-12-03T10:00:00-06:00",
            "end": "2026-12-03T10:45:00-06:00",
            "description": "First meeting at the recovery center",
            "comment": "PHQ-9 of 19 at intake",
            "participant": [{"actor": patient, "status": "accepted"}],
        },
        {
            "resourceType": "HealthcareService",
            "id": f"program-{tag}",
            "name": "Harbor peer recovery program",
            "comment": "For patients on buprenorphine 16 mg",
        },
        {
            "resourceType": "Consent",
            "id": f"consent-{tag}",
            "status": "active",
            "scope": {"text": "Patient privacy"},
            "category": [{"text": "42 CFR Part 2"}],
            "patient": patient,
        },
    ):
        _put(base_url, res)
    sr = {
        "resourceType": "ServiceRequest",
        "id": f"sr-{tag}",
        "extension": [
            {"url": PERTAINS_TO_GOAL, "valueReference": {"reference": f"Goal/goal-{tag}"}},
            {"url": "http://example.org/fhir/StructureDefinition/chart-flag", "valueString": "F11.20"},
        ],
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "461481000124109"}]},
        "subject": patient,
        "occurrenceDateTime": "2026-12-03T10:00:00-06:00",
        "requester": {"display": "Dr. Sam Patel"},
        "reasonCode": [
            {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}],
                # free text about the person never reaches a peer, however it reads (issue 10 #5)
                "text": "Opioid use disorder, severe (F11.20); HCV positive; on buprenorphine 16 mg",
            }
        ],
        "reasonReference": [{"reference": f"Condition/dx-{tag}", "display": "Opioid use disorder"}],
        "supportingInfo": [
            {"reference": f"Observation/lab-{tag}", "display": "UDS positive for fentanyl"},
            {"reference": f"List/meds-{tag}", "display": "buprenorphine 16 mg"},
            {"reference": f"Appointment/appt-{tag}"},
            {"reference": f"HealthcareService/program-{tag}"},
            {"reference": f"Consent/consent-{tag}"},
        ],
        "note": [{"text": "Counseling notes: CBT homework reviewed"}],
    }
    task = {
        "resourceType": "Task",
        "id": f"task-{tag}",
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
        "focus": {"reference": f"ServiceRequest/sr-{tag}"},
        "for": patient,
        "authoredOn": "2026-11-26T09:15:00-06:00",
        "owner": {"reference": owner_ref},
        "statusReason": {"text": "patient in detox"},
        "note": [{"text": "on buprenorphine 16 mg, UDS positive for fentanyl"}],
        "input": [
            _input("goal", valueString="Reconnect with family"),
            _input("program", valueString="Warm handoff after ED visit"),
            _input("appointment", valueDateTime="2026-12-10T14:00:00-06:00"),
            {"type": {"text": "labs"}, "valueReference": {"reference": f"Observation/lab-{tag}"}},
            {"type": {"text": "meds"}, "valueString": "buprenorphine 16 mg daily"},
        ],
    }
    _put(base_url, sr)
    _put(base_url, task)
    return str(task["id"])


async def test_goals_appointments_and_programs_reach_the_inbox_and_clinical_detail_does_not(
    sandbox_ehr: Sandbox, tmp_path: Path, make_service: ServiceFactory
) -> None:
    from bridge.store import open_store

    db = tmp_path / "bridge.db"
    store: Store = await open_store(f"sqlite+aiosqlite:///{db}")
    try:
        w = World(sandbox_ehr)
        p = w.participant()
        svc = await make_service(
            settings_for(sandbox_ehr.base_url),
            store,
            w.directory,
            inbound=InboundSettings(allow_fast_poll=True),
        )
        owner = await svc.intake.organization_ref("clinic")
        ident = p.identifiers["clinic"]
        async with httpx.AsyncClient(timeout=30) as http:
            found = await http.get(
                f"{sandbox_ehr.base_url}/Patient", params={"identifier": f"{ident.system}|{ident.value}"}
            )
        patient_id = str(found.json()["entry"][0]["resource"]["id"])
        task_id = place_rich_referral(sandbox_ehr.base_url, tag=w.tag, owner_ref=owner, patient_id=patient_id)
        assert await svc.inbound.poll("clinic") == 1
    finally:
        await store.close()

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT task_id, status, referral FROM inbox").fetchall()
    assert [(r[0], r[1]) for r in rows] == [(task_id, ReferralStatus.REQUESTED.value)]
    stored = json.loads(rows[0][2])
    assert stored["goals"] == ["Reconnect with family", "Find stable housing by spring"]
    assert stored["programs"] == ["Warm handoff after ED visit", "Harbor peer recovery program"]
    assert stored["appointments"] == [
        # the requested occurrence and the booked Appointment are one event: the described one stays
        {"start": "2026-12-03T10:00:00-06:00", "description": "First meeting at the recovery center"},
        {"start": "2026-12-10T14:00:00-06:00", "description": None},
    ]
    assert stored["consent_ref"] == f"Consent/consent-{w.tag}"
    assert stored["reason"] is None and stored["status_reason"] is None
    assert stored["contact"]["name"] == {"given": "Avery", "family": "Quinn"}
    row_text = rows[0][2]
    for word in PRIVATE:
        assert word not in row_text, word
    for ref in (f"Observation/lab-{w.tag}", f"Condition/dx-{w.tag}", f"List/meds-{w.tag}"):
        assert ref not in row_text, ref
