"""PeerEncounter -> Encounter (US Core Encounter).

https://hl7.org/fhir/us/core/StructureDefinition-us-core-encounter.html
Must-supports filled: identifier, status, class, type, subject, participant (type, period,
individual), period, location, serviceProvider; plus length and basedOn.

- ``class`` (v3-ActCode): AMB office, HH home, FLD community/field, VR virtual. A phone or video
  session is VR whatever the peer's own setting: the person was not met in person.
- ``type``: HCPCS H0038 first (US Core needs a type; it is the service), HQ for group sessions
  (HCPCS modifiers have no element of their own on Encounter), then the contact method
  (v3-ParticipationMode) and each peer activity (local codes) so the chart shows what was done.
"""

from __future__ import annotations

from typing import Any

from bridge.domain import ContactMethod, Modality, PeerEncounter, Setting
from bridge.errors import MappingError
from bridge.mappers.codes import (
    ACTIVITY,
    CONTACT_METHOD,
    ENCOUNTER_CLASS,
    GROUP_MODIFIER,
    HCPCS,
    LOCAL_ACTIVITY,
    PEER_SERVICE,
    UCUM,
    US_CORE_ENCOUNTER,
    V3_ACT_CODE,
    V3_PARTICIPATION_MODE,
    V3_PARTICIPATION_TYPE,
)
from bridge.mappers.context import MappingContext, fhir_datetime, reference, validated


def check_encounter(encounter: PeerEncounter) -> None:
    """Raise MappingError for a session that cannot be mapped (beyond the record's own checks)."""
    if encounter.end <= encounter.start:
        raise MappingError("encounter.end", "must be after start")
    if encounter.setting is Setting.VIRTUAL and encounter.method is ContactMethod.FACE_TO_FACE:
        raise MappingError("encounter.method", "a virtual session cannot be face-to-face")
    if not encounter.activities:
        raise MappingError("encounter.activities", "at least one activity is required")
    for i, activity in enumerate(encounter.activities):
        if activity not in ACTIVITY:
            raise MappingError(f"encounter.activities.{i}", "unknown activity")
    if encounter.modality is Modality.GROUP and encounter.group_size is None:
        raise MappingError("encounter.group_size", "required for group sessions")


def start_resource(
    encounter: PeerEncounter, profile: str, service_request_ref: str | None, security: list[dict[str, Any]]
) -> dict[str, Any]:
    """Check a session that becomes an Encounter or a Procedure and start that resource's ``meta``.

    A session that belongs to a referral must point at its ServiceRequest (``basedOn``).
    """
    check_encounter(encounter)
    if encounter.referral_id is not None and service_request_ref is None:
        raise MappingError("encounter.referral_id", "the referral's ServiceRequest reference is required")
    meta: dict[str, Any] = {"profile": [profile]}
    if security:
        meta["security"] = security
    return meta


def default_refs(
    ctx: MappingContext, encounter: PeerEncounter, practitioner_ref: str | None, organization_ref: str | None
) -> dict[str, str]:
    """The peer and organization references a session's resources use when the caller gives none:
    conditional references by the bridge's stable identifiers (the Bundle passes ``urn:uuid`` ones)."""
    return {
        "practitioner_ref": practitioner_ref or ctx.practitioner_reference(encounter.peer_id),
        "organization_ref": organization_ref or ctx.organization_reference(),
    }


def period(encounter: PeerEncounter) -> dict[str, str]:
    return {
        "start": fhir_datetime(encounter.start, "encounter.start"),
        "end": fhir_datetime(encounter.end, "encounter.end"),
    }


def encounter_class(encounter: PeerEncounter) -> dict[str, str]:
    setting = Setting.VIRTUAL if encounter.method is not ContactMethod.FACE_TO_FACE else encounter.setting
    code, display = ENCOUNTER_CLASS[setting]
    return {"system": V3_ACT_CODE, "code": code, "display": display}


def service_type(encounter: PeerEncounter) -> list[dict[str, Any]]:
    """H0038 (+ HQ for groups), contact method and activities, as Encounter.type entries."""
    types: list[dict[str, Any]] = [
        {
            "coding": [{"system": HCPCS, "code": PEER_SERVICE[0], "display": PEER_SERVICE[1]}],
            "text": "Peer support services",
        }
    ]
    if encounter.modality is Modality.GROUP:
        types.append({"coding": [{"system": HCPCS, "code": GROUP_MODIFIER[0], "display": GROUP_MODIFIER[1]}]})
    mode, mode_display = CONTACT_METHOD[encounter.method]
    types.append({"coding": [{"system": V3_PARTICIPATION_MODE, "code": mode, "display": mode_display}]})
    for activity in encounter.activities:
        types.append(
            {"coding": [{"system": LOCAL_ACTIVITY, "code": activity.value, "display": ACTIVITY[activity]}]}
        )
    return types


def build_encounter(
    ctx: MappingContext,
    encounter: PeerEncounter,
    *,
    practitioner_ref: str,
    organization_ref: str,
    service_request_ref: str | None,
    security: list[dict[str, Any]],
) -> dict[str, Any]:
    meta = start_resource(encounter, US_CORE_ENCOUNTER, service_request_ref, security)
    when = period(encounter)
    out: dict[str, Any] = {
        "resourceType": "Encounter",
        "meta": meta,
        "identifier": [ctx.identifier("encounter", encounter.id)],
        "status": "finished",
        "class": encounter_class(encounter),
        "type": service_type(encounter),
        "subject": ctx.patient(),
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            {"system": V3_PARTICIPATION_TYPE, "code": "PPRF", "display": "primary performer"}
                        ]
                    }
                ],
                "period": when,
                "individual": reference(practitioner_ref),
            }
        ],
        "period": when,
        "length": {"value": encounter.minutes, "unit": "min", "system": UCUM, "code": "min"},
        "location": [{"location": {"display": encounter.location_name}, "status": "completed"}],
        "serviceProvider": reference(organization_ref, ctx.organization_name),
    }
    if service_request_ref is not None:
        out["basedOn"] = [reference(service_request_ref)]
    return out


def encounter_to_fhir(
    ctx: MappingContext,
    encounter: PeerEncounter,
    *,
    practitioner_ref: str | None = None,
    organization_ref: str | None = None,
    service_request_ref: str | None = None,
    security: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A peer session as a validated US Core Encounter dict.

    References default to conditional references by the bridge's stable identifiers; the Bundle
    builder passes ``urn:uuid`` references instead. ``service_request_ref`` is required when the
    session belongs to a referral (``basedOn``).
    """
    refs = default_refs(ctx, encounter, practitioner_ref, organization_ref)
    resource = build_encounter(
        ctx, encounter, **refs, service_request_ref=service_request_ref, security=security or []
    )
    return validated(resource, "encounter")
