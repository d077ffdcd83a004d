"""Made-up sample records and clinic-side resources, shared by the demo, the benchmarks and the tests.

Nobody here is real. Each factory's defaults are the mapper tests' sample (their golden FHIR JSON
is built from them, so changing a default changes golden files); keyword arguments override any
field. Times are in US Central, a non-UTC offset that catches timezone bugs.

The clinic side (what the EHR's own users and systems write, not the bridge):
:func:`task_topic` is the Subscriptions Backport topic for referral Tasks that the sandbox EHR
does not seed, and :func:`referral_resources` the ServiceRequest + Task a clinician places
(https://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-TaskForReferralManagement.html).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bridge.domain import (
    Activity,
    Audience,
    CertificationLevel,
    HumanName,
    Identifier,
    Modality,
    NoteKind,
    Participant,
    PeerEncounter,
    PeerNote,
    PeerWorker,
    Referral,
    ReferralStatus,
    Setting,
)
from bridge.mappers import referral_to_fhir

CENTRAL = timezone(timedelta(hours=-6))
ORG_ID = "harbor-recovery"
ORG_NAME = "Harbor Recovery Community Organization"
ORG_SYSTEM = "https://harbor-recovery.example.org/fhir/id"
MRN_SYSTEM = "urn:oid:1.2.3.4.5.1"
TASK_TOPIC = "http://example.org/fhir/SubscriptionTopic/referral-task"
HOUSING_NOTE = "Met at the drop-in center and worked on the housing application together."


def organization(org_id: str = ORG_ID, name: str = ORG_NAME) -> dict[str, str]:
    """The ``[organization]`` table of a bridge's settings."""
    return {"id": org_id, "name": name, "identifier_system": ORG_SYSTEM}


def worker_toml(
    org_id: str, *, base_url: str, store_url: str, concurrency: int, rules_dir: Path, lease_seconds: int = 30
) -> str:
    """A ``bridge.toml`` for a worker process (``python -m bridge.exchange.run``) sending to one
    endpoint, ``clinic``, with the Texas rules."""
    from bridge_dev.stack import bridge_config, to_toml  # stack builds on these samples

    cfg = bridge_config(
        base_url,
        org=org_id,
        org_name="Harbor Recovery",
        store_url=store_url,
        endpoint={"max_concurrency": concurrency},
        rules={"dir": str(rules_dir)},
        store={"lease_seconds": lease_seconds},
    )
    return to_toml(cfg)


def participant(pid: str = "pt-1", mrn: str = "MRN-1001", **kw: Any) -> Participant:
    fields: dict[str, Any] = {
        "id": pid,
        "name": HumanName(given="Avery", family="Quinn"),
        "identifiers": {"clinic": Identifier(system=MRN_SYSTEM, value=mrn)},
        "home_endpoint": "clinic",
    } | kw
    return Participant(**fields)


def peer(pid: str = "peer-1", **kw: Any) -> PeerWorker:
    fields: dict[str, Any] = {
        "id": pid,
        "name": HumanName(given="Jordan", family="Reyes"),
        "credential": "PRSS",
        "certification_level": CertificationLevel.PROVISIONAL,
        "supervisor_id": "sup-1",
        "organization_id": ORG_ID,
    } | kw
    return PeerWorker(**fields)


def certified_peer(pid: str = "peer-1", **kw: Any) -> PeerWorker:
    """A fully certified peer without a supervisor on file: nothing of theirs waits for a co-sign."""
    fields: dict[str, Any] = {
        "credential": "CPRS",
        "certification_level": CertificationLevel.CERTIFIED,
        "supervisor_id": None,
    } | kw
    return peer(pid, **fields)


def supervisor(pid: str = "sup-1", **kw: Any) -> PeerWorker:
    fields: dict[str, Any] = {
        "id": pid,
        "name": HumanName(given="Morgan", family="Lee"),
        "credential": "CPRS",
        "certification_level": CertificationLevel.SUPERVISOR,
        "organization_id": ORG_ID,
        "npi": "1234567893",
    } | kw
    return PeerWorker(**fields)


def encounter(eid: str = "enc-1", **kw: Any) -> PeerEncounter:
    fields: dict[str, Any] = {
        "id": eid,
        "participant_id": "pt-1",
        "peer_id": "peer-1",
        "start": datetime(2026, 11, 26, 14, 0, tzinfo=CENTRAL),
        "end": datetime(2026, 11, 26, 14, 50, tzinfo=CENTRAL),
        "setting": Setting.COMMUNITY,
        "location_name": "Harbor drop-in center",
        "activities": (Activity.RECOVERY_COACHING, Activity.RESOURCE_NAVIGATION),
    } | kw
    return PeerEncounter(**fields)


def group_encounter(eid: str = "enc-g1", **kw: Any) -> PeerEncounter:
    fields: dict[str, Any] = {
        "modality": Modality.GROUP,
        "group_size": 8,
        "setting": Setting.OFFICE,
        "activities": (Activity.GROUP_FACILITATION,),
    } | kw
    return encounter(eid, **fields)


def note(nid: str = "note-1", **kw: Any) -> PeerNote:
    fields: dict[str, Any] = {
        "id": nid,
        "participant_id": "pt-1",
        "author_id": "peer-1",
        "encounter_id": "enc-1",
        "kind": NoteKind.PROGRESS,
        "audience": Audience.CARE_TEAM,
        "text": "Met at the drop-in center. Talked through the housing application together.",
        "written_at": datetime(2026, 11, 26, 15, 10, tzinfo=CENTRAL),
        "summary": "Recovery coaching; linked to the housing program.",
        "goal": "Stable housing by spring",
        "progress": "Application submitted",
    } | kw
    return PeerNote(**fields)


def plain_note(nid: str = "note-1", **kw: Any) -> PeerNote:
    """A short care-team note without billing documentation, not SUD-related (no consent needed)."""
    fields: dict[str, Any] = {
        "text": HOUSING_NOTE,
        "summary": None,
        "goal": None,
        "progress": None,
        "sud_related": False,
    } | kw
    return note(nid, **fields)


def cosigned_note(nid: str = "note-1", **kw: Any) -> PeerNote:
    return note(nid, cosigner_id="sup-1", cosigned_at=datetime(2026, 11, 26, 16, 0, tzinfo=CENTRAL), **kw)


def referral(rid: str = "ref-1", **kw: Any) -> Referral:
    fields: dict[str, Any] = {
        "id": rid,
        "endpoint": "clinic",
        "task_id": "task-1",
        "service_request_id": "sr-1",
        "status": ReferralStatus.REQUESTED,
        "business_status": "2.0",
        "authored_on": datetime(2026, 11, 20, 9, 15, tzinfo=CENTRAL),
        "requester": "Dr. Sam Patel",
        "patient_id": "pat-77",
        "reason": "Wants support staying in recovery after discharge",
        "goals": ("Attend a mutual-help meeting weekly",),
        "programs": ("Harbor recovery housing",),
        "priority": "routine",
    } | kw
    return Referral(**fields)


# --- the clinic's side --------------------------------------------------------------------------

_ST = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"


def task_topic(description: str = "A Task was created or updated") -> dict[str, Any]:
    """The topic (R5 SubscriptionTopic extensions on a Basic, as the Backport IG carries them in R4)
    for referral Tasks created or updated, filterable by owner and status. PUT it to ``Basic/{id}``."""
    trigger = [
        {"url": "description", "valueMarkdown": description},
        {"url": "resource", "valueUri": "http://hl7.org/fhir/StructureDefinition/Task"},
        {"url": "supportedInteraction", "valueCode": "create"},
        {"url": "supportedInteraction", "valueCode": "update"},
        {"url": "fhirPathCriteria", "valueString": "true"},
    ]
    filters = [
        {
            "url": f"{_ST}.canFilterBy",
            "extension": [
                {"url": "resource", "valueUri": "Task"},
                {"url": "filterParameter", "valueString": name},
            ],
        }
        for name in ("owner", "status")
    ]
    return {
        "resourceType": "Basic",
        "id": "topic-referral-task",
        "modifierExtension": [{"url": f"{_ST}.status", "valueCode": "active"}],
        "extension": [
            {"url": f"{_ST}.url", "valueUri": TASK_TOPIC},
            {"url": f"{_ST}.title", "valueString": "Referral Task changed"},
            {"url": f"{_ST}.resourceTrigger", "extension": trigger},
            *filters,
        ],
        "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
    }


def referral_resources(tag: str, *, patient_id: str, owner_ref: str, **kw: Any) -> list[dict[str, Any]]:
    """What a clinician's system writes to place a referral: the ServiceRequest, then a Task for it
    owned by the peer organization (ids ``sr-{tag}``, ``task-{tag}``). PUT each to
    ``{resourceType}/{id}``; the server assigns the versions."""
    fields: dict[str, Any] = {
        "task_id": f"task-{tag}",
        "service_request_id": f"sr-{tag}",
        "patient_id": patient_id,
        "goals": (),
        "programs": (),
    } | kw
    sr, task = referral_to_fhir(referral(f"r-{tag}", **fields), owner_ref=owner_ref)
    for res in (sr, task):
        res.get("meta", {}).pop("versionId", None)
    return [sr, task]
