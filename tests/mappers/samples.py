"""Sample peer-side records for the mapper tests. Time is frozen at a non-UTC instant (US Central)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
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
from bridge.mappers import MappingContext

CENTRAL = timezone(timedelta(hours=-6))  # a non-UTC offset catches timezone bugs
NOW = datetime(2026, 11, 26, 16, 30, tzinfo=CENTRAL)
ORG_SYSTEM = "https://harbor-recovery.example.org/fhir/id"
MRN_SYSTEM = "urn:oid:1.2.3.4.5.1"


def participant(pid: str = "pt-1", mrn: str = "MRN-1001") -> Participant:
    return Participant(
        id=pid,
        name=HumanName(given="Avery", family="Quinn"),
        identifiers={"clinic": Identifier(system=MRN_SYSTEM, value=mrn)},
        home_endpoint="clinic",
    )


def peer(pid: str = "peer-1", **kw: Any) -> PeerWorker:
    fields: dict[str, Any] = {
        "id": pid,
        "name": HumanName(given="Jordan", family="Reyes"),
        "credential": "PRSS",
        "certification_level": CertificationLevel.PROVISIONAL,
        "supervisor_id": "sup-1",
        "organization_id": "harbor-recovery",
    } | kw
    return PeerWorker(**fields)


def supervisor(pid: str = "sup-1") -> PeerWorker:
    return PeerWorker(
        id=pid,
        name=HumanName(given="Morgan", family="Lee"),
        credential="CPRS",
        certification_level=CertificationLevel.SUPERVISOR,
        organization_id="harbor-recovery",
        npi="1234567893",
    )


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


def group_encounter(eid: str = "enc-g1") -> PeerEncounter:
    return encounter(
        eid,
        modality=Modality.GROUP,
        group_size=8,
        setting=Setting.OFFICE,
        activities=(Activity.GROUP_FACILITATION,),
    )


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


def ctx(patient_reference: str = "Patient/pat-77", **kw: Any) -> MappingContext:
    fields: dict[str, Any] = {
        "organization_id": "harbor-recovery",
        "organization_name": "Harbor Recovery Community Organization",
        "identifier_system": ORG_SYSTEM,
        "endpoint": "clinic",
        "patient_reference": patient_reference,
        "now": NOW,
    } | kw
    return MappingContext(**fields)
