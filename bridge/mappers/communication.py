"""A note for a referral arrived -> Communication to the referring clinician.

https://hl7.org/fhir/R4/communication.html (category ``notification``,
http://terminology.hl7.org/CodeSystem/communication-category). ``basedOn`` the referral's
ServiceRequest, ``about`` the note, ``recipient`` the Task's requester, ``sender`` the peer
organization. The payload says only that the note arrived, what it is and who wrote it, never
what it says; a Part 2-labelled note's Communication carries the same labels.
"""

from __future__ import annotations

from typing import Any

from bridge.domain import PeerEncounter, PeerNote, PeerWorker
from bridge.mappers.context import MappingContext, fhir_datetime
from bridge.mappers.narrative import in_offset, note_title, signature, when, with_text

COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"


def build_note_notification(
    ctx: MappingContext,
    note: PeerNote,
    *,
    peer: PeerWorker,
    encounter: PeerEncounter | None,
    recipient_ref: str,
    service_request_ref: str,
    note_ref: str,
    organization_ref: str,
    security: list[dict[str, Any]],
) -> dict[str, Any]:
    zone = encounter.start.tzinfo if encounter is not None else None
    title = note_title(note, encounter)
    words = (
        f"A peer support note for your referral has arrived ({title}), written by "
        f"{signature(peer)} on {when(note.written_at, zone)}."
    )
    meta: dict[str, Any] = {}
    if security:
        meta["security"] = security
    out: dict[str, Any] = {
        "resourceType": "Communication",
        **({"meta": meta} if meta else {}),
        "identifier": [ctx.identifier("note-notification", note.id)],
        "basedOn": [{"reference": service_request_ref}],
        "status": "completed",
        "category": [
            {
                "coding": [
                    {"system": COMMUNICATION_CATEGORY, "code": "notification", "display": "Notification"}
                ]
            }
        ],
        "subject": ctx.patient(),
        "about": [{"reference": note_ref}],
        "sent": fhir_datetime(in_offset(note.written_at, zone), "note.written_at"),
        "recipient": [{"reference": recipient_ref}],
        "sender": {"reference": organization_ref},
        "payload": [{"contentString": words}, {"contentReference": {"reference": note_ref}}],
    }
    return with_text(out, [words])
