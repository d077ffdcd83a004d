"""PeerNote -> DocumentReference (US Core DocumentReference, category clinical-note).

https://hl7.org/fhir/us/core/StructureDefinition-us-core-documentreference.html
- ``type``: LOINC 11506-3 "Progress note" (no LOINC peer-note code exists) plus the local note kind.
- ``docStatus``: ``preliminary`` until co-signed (``final``; ``amended`` for amended notes), unless
  the caller says no co-signature is required for this peer.
- ``authenticator``: the co-signer, once co-signed.
- ``context``: the Encounter, or only the session period for endpoints that cannot take Encounters.
- The attachment is the note as the treatment team reads it: the §2.32 notice first for every
  Part 2-labelled note, the peer's text, then the billable-documentation fields and the signature
  lines; its title (and ``description``) says what the note is: kind, activities, length.
- Times to the second, in the session's offset (a note written elsewhere reads in the session's).
- DS4P labels (see :mod:`bridge.mappers.labels`) in ``meta.security`` and ``securityLabel``.
"""

from __future__ import annotations

import base64
from typing import Any

from bridge.domain import Audience, NoteStatus, PeerEncounter, PeerNote, PeerWorker
from bridge.errors import MappingError
from bridge.mappers.codes import (
    CLINICAL_NOTE,
    CONTACT_METHOD,
    LOCAL_NOTE_KIND,
    LOINC,
    NOTE_KIND,
    PROGRESS_NOTE,
    US_CORE_DOCREF_CATEGORY,
    US_CORE_DOCUMENTREFERENCE,
)
from bridge.mappers.context import MappingContext, fhir_datetime, reference, validated
from bridge.mappers.encounter import check_encounter, period
from bridge.mappers.labels import labels_for, notice_for
from bridge.mappers.narrative import in_offset, note_title, session_span, signature, when


def check_note(
    note: PeerNote, *, peer: PeerWorker, encounter: PeerEncounter | None, cosigner: PeerWorker | None
) -> None:
    """Raise MappingError when the note must not or cannot be sent as given."""
    if note.audience is Audience.PEER_TEAM:
        raise MappingError("note.audience", "peer-team notes never leave the bridge")
    if note.status is NoteStatus.DRAFT:
        raise MappingError("note.status", "draft notes are not sent")
    if note.author_id != peer.id:
        raise MappingError("note.author_id", "does not match the peer given")
    if note.cosigner_id is not None and cosigner is None:
        raise MappingError("cosigner", "required: the note is co-signed")
    if cosigner is not None and cosigner.id != note.cosigner_id:
        raise MappingError("note.cosigner_id", "does not match the co-signer given")
    if note.encounter_id is not None:
        if encounter is None:
            raise MappingError("encounter", "required: the note belongs to a session")
        if encounter.id != note.encounter_id:
            raise MappingError("note.encounter_id", "does not match the session given")
    if encounter is not None:
        if note.encounter_id is None:
            raise MappingError("note.encounter_id", "missing for a note sent with a session")
        if encounter.participant_id != note.participant_id:
            raise MappingError("note.participant_id", "does not match the session's participant")
        check_encounter(encounter)
        if encounter.billable:
            # Texas 26 TAC 301.361: a billable note documents activities, the goal and progress
            for field in ("summary", "goal", "progress"):
                value = getattr(note, field)
                if value is None or not value.strip():
                    raise MappingError(f"note.{field}", "required for a billable session")


def doc_status(note: PeerNote, *, cosign_required: bool) -> str:
    if note.cosigned or not cosign_required:
        return "amended" if note.status is NoteStatus.AMENDED else "final"
    return "preliminary"


def _signature(worker: PeerWorker) -> str:
    return signature(worker)


def render_note(
    note: PeerNote, *, peer: PeerWorker, encounter: PeerEncounter | None, cosigner: PeerWorker | None
) -> str:
    """The attachment text, in the order a reader needs it."""
    parts: list[str] = []
    notice = notice_for(note)
    if notice:
        parts.append(notice)
    parts.append(note.text)
    fields: list[str] = []
    zone = encounter.start.tzinfo if encounter is not None else None
    if encounter is not None:
        method = CONTACT_METHOD[encounter.method][1]
        fields.append(
            f"Session: {session_span(encounter)}, {encounter.location_name}, "
            f"{encounter.modality.value}, {method}"
        )
    for label, value in (
        ("Summary of activities", note.summary),
        ("Recovery-plan goal", note.goal),
        ("Progress toward the goal", note.progress),
    ):
        if value:
            fields.append(f"{label}: {value}")
    fields.append(f"Signed: {_signature(peer)}, {when(note.written_at, zone)}")
    if cosigner is not None and note.cosigned_at is not None:
        fields.append(f"Co-signed: {_signature(cosigner)}, {when(note.cosigned_at, zone)}")
    parts.append("\n".join(fields))
    return "\n\n".join(parts) + "\n"


def build_document_reference(
    ctx: MappingContext,
    note: PeerNote,
    *,
    peer: PeerWorker,
    encounter: PeerEncounter | None,
    cosigner: PeerWorker | None,
    practitioner_ref: str,
    cosigner_ref: str | None,
    organization_ref: str,
    encounter_ref: str | None,
    cosign_required: bool,
) -> dict[str, Any]:
    check_note(note, peer=peer, encounter=encounter, cosigner=cosigner)
    security = labels_for(note)
    meta: dict[str, Any] = {"profile": [US_CORE_DOCUMENTREFERENCE]}
    if security:
        meta["security"] = security
    text = render_note(note, peer=peer, encounter=encounter, cosigner=cosigner)
    zone = encounter.start.tzinfo if encounter is not None else None
    written = fhir_datetime(in_offset(note.written_at, zone), "note.written_at")
    title = note_title(note, encounter)
    out: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "meta": meta,
        "identifier": [ctx.identifier("note", note.id)],
        "status": "current",
        "docStatus": doc_status(note, cosign_required=cosign_required),
        "type": {
            "coding": [
                {"system": LOINC, "code": PROGRESS_NOTE[0], "display": PROGRESS_NOTE[1]},
                {"system": LOCAL_NOTE_KIND, "code": note.kind.value, "display": NOTE_KIND[note.kind]},
            ],
            "text": NOTE_KIND[note.kind],
        },
        "category": [
            {
                "coding": [
                    {"system": US_CORE_DOCREF_CATEGORY, "code": CLINICAL_NOTE[0], "display": CLINICAL_NOTE[1]}
                ]
            }
        ],
        "subject": ctx.patient(),
        "date": written,
        "author": [reference(practitioner_ref, _signature(peer))],
        "custodian": reference(organization_ref, ctx.organization_name),
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                    "title": title,
                    "creation": written,
                }
            }
        ],
    }
    if cosigner is not None:
        if cosigner_ref is None:
            raise MappingError("cosigner", "a reference to the co-signer is required")
        out["authenticator"] = reference(cosigner_ref, _signature(cosigner))
    out["description"] = title
    if security:
        out["securityLabel"] = [{"coding": [label]} for label in security]
    if encounter is not None:
        out["context"] = (
            {"encounter": [reference(encounter_ref)], "period": period(encounter)}
            if encounter_ref is not None
            else {"period": period(encounter)}
        )
    return out


def note_to_document_reference(
    ctx: MappingContext,
    note: PeerNote,
    *,
    peer: PeerWorker,
    encounter: PeerEncounter | None = None,
    cosigner: PeerWorker | None = None,
    practitioner_ref: str | None = None,
    cosigner_ref: str | None = None,
    organization_ref: str | None = None,
    encounter_ref: str | None = None,
    cosign_required: bool = True,
) -> dict[str, Any]:
    """A peer note as a validated US Core DocumentReference dict.

    ``encounter`` is required when the note belongs to a session (its period goes into
    ``context.period``; billable sessions need summary, goal and progress). Without
    ``encounter_ref`` the context carries the period only (endpoints that cannot take Encounters).
    """
    return validated(
        build_document_reference(
            ctx,
            note,
            peer=peer,
            encounter=encounter,
            cosigner=cosigner,
            practitioner_ref=practitioner_ref or ctx.practitioner_reference(peer.id),
            cosigner_ref=cosigner_ref or (ctx.practitioner_reference(cosigner.id) if cosigner else None),
            organization_ref=organization_ref or ctx.organization_reference(),
            encounter_ref=encounter_ref,
            cosign_required=cosign_required,
        ),
        "document_reference",
    )
