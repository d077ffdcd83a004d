"""PeerNote -> Provenance: who wrote, co-signed and transmitted a note (US Core Provenance).

https://hl7.org/fhir/us/core/StructureDefinition-us-core-provenance.html
Agents: ``author`` (the peer, on behalf of the peer organization), ``verifier`` (the co-signer,
once co-signed) and ``transmitter`` (the peer organization, through the bridge).

R4 Provenance has no ``identifier`` element, so the stable key for conditional create is a
``meta.tag`` in the bridge's identifier system (searchable with ``_tag`` on any server).
"""

from __future__ import annotations

from typing import Any

from bridge.domain import PeerNote
from bridge.errors import MappingError
from bridge.mappers.codes import (
    PROVENANCE_PARTICIPANT_TYPE,
    US_CORE_PROVENANCE,
    US_CORE_PROVENANCE_PARTICIPANT_TYPE,
)
from bridge.mappers.context import MappingContext, fhir_datetime, reference, validated
from bridge.mappers.labels import labels_for


def provenance_tag(ctx: MappingContext, note: PeerNote) -> dict[str, str]:
    ident = ctx.identifier("provenance", note.id)
    return {"system": ident["system"], "code": ident["value"]}


def _agent(system: str, code: str, display: str, who: str, on_behalf_of: str | None) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": system, "code": code, "display": display}]},
        "who": reference(who),
    }
    if on_behalf_of is not None:
        agent["onBehalfOf"] = reference(on_behalf_of)
    return agent


def build_provenance(
    ctx: MappingContext,
    note: PeerNote,
    *,
    target_ref: str,
    practitioner_ref: str,
    cosigner_ref: str | None,
    organization_ref: str,
) -> dict[str, Any]:
    if note.cosigned and cosigner_ref is None:
        raise MappingError("cosigner", "required: the note is co-signed")
    meta: dict[str, Any] = {"profile": [US_CORE_PROVENANCE], "tag": [provenance_tag(ctx, note)]}
    security = labels_for(note)
    if security:
        meta["security"] = security
    agents = [
        _agent(PROVENANCE_PARTICIPANT_TYPE, "author", "Author", practitioner_ref, organization_ref),
    ]
    if note.cosigned and cosigner_ref is not None:
        agents.append(
            _agent(PROVENANCE_PARTICIPANT_TYPE, "verifier", "Verifier", cosigner_ref, organization_ref)
        )
    agents.append(
        _agent(US_CORE_PROVENANCE_PARTICIPANT_TYPE, "transmitter", "Transmitter", organization_ref, None)
    )
    # recorded: when the note's authorship was last attested, so the same note maps the same way
    recorded = note.cosigned_at if note.cosigned_at is not None else note.written_at
    return {
        "resourceType": "Provenance",
        "meta": meta,
        "target": [reference(target_ref)],
        "recorded": fhir_datetime(recorded, "note.written_at"),
        "agent": agents,
    }


def note_to_provenance(
    ctx: MappingContext,
    note: PeerNote,
    *,
    target_ref: str | None = None,
    practitioner_ref: str | None = None,
    cosigner_ref: str | None = None,
    organization_ref: str | None = None,
) -> dict[str, Any]:
    """The authorship record of a note, as a validated US Core Provenance dict.

    ``target_ref`` defaults to the note's DocumentReference by its stable identifier.
    """
    return validated(
        build_provenance(
            ctx,
            note,
            target_ref=target_ref or f"DocumentReference?{ctx.search_by_identifier('note', note.id)}",
            practitioner_ref=practitioner_ref or ctx.practitioner_reference(note.author_id),
            cosigner_ref=cosigner_ref
            or (ctx.practitioner_reference(note.cosigner_id) if note.cosigner_id else None),
            organization_ref=organization_ref or ctx.organization_reference(),
        ),
        "provenance",
    )
