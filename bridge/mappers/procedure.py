"""PeerEncounter -> Procedure: the service delivered (US Core Procedure).

https://hl7.org/fhir/us/core/StructureDefinition-us-core-procedure.html
The SDOH Clinical Care closed loop points ``Task.output`` (type ``resulting-activity``) at this
Procedure: https://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-TaskForReferralManagement.html
"""

from __future__ import annotations

from typing import Any

from bridge.domain import PeerEncounter
from bridge.mappers.codes import ACTIVITY, HCPCS, PEER_SERVICE, US_CORE_PROCEDURE
from bridge.mappers.context import MappingContext, reference, validated
from bridge.mappers.encounter import default_refs, period, start_resource


def build_procedure(
    ctx: MappingContext,
    encounter: PeerEncounter,
    *,
    practitioner_ref: str,
    organization_ref: str,
    encounter_ref: str | None,
    service_request_ref: str | None,
    security: list[dict[str, Any]],
) -> dict[str, Any]:
    meta = start_resource(encounter, US_CORE_PROCEDURE, service_request_ref, security)
    activities = ", ".join(ACTIVITY[a].lower() for a in encounter.activities)
    out: dict[str, Any] = {
        "resourceType": "Procedure",
        "meta": meta,
        "identifier": [ctx.identifier("procedure", encounter.id)],
        "status": "completed",
        "code": {
            "coding": [{"system": HCPCS, "code": PEER_SERVICE[0], "display": PEER_SERVICE[1]}],
            "text": f"Peer support services: {activities}",
        },
        "subject": ctx.patient(),
        "performedPeriod": period(encounter),
        "performer": [{"actor": reference(practitioner_ref), "onBehalfOf": reference(organization_ref)}],
        "location": {"display": encounter.location_name},
    }
    if encounter_ref is not None:
        out["encounter"] = reference(encounter_ref)
    if service_request_ref is not None:
        out["basedOn"] = [reference(service_request_ref)]
    return out


def encounter_to_procedure(
    ctx: MappingContext,
    encounter: PeerEncounter,
    *,
    practitioner_ref: str | None = None,
    organization_ref: str | None = None,
    encounter_ref: str | None = None,
    service_request_ref: str | None = None,
    security: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The service a peer session delivered, as a validated US Core Procedure dict."""
    refs = default_refs(ctx, encounter, practitioner_ref, organization_ref)
    resource = build_procedure(
        ctx,
        encounter,
        **refs,
        encounter_ref=encounter_ref,
        service_request_ref=service_request_ref,
        security=security or [],
    )
    return validated(resource, "procedure")
