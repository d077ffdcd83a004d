"""The transaction Bundle that carries one piece of peer work to an EHR.

https://hl7.org/fhir/R4/http.html#transaction and https://hl7.org/fhir/R4/bundle.html
- Every entry is a conditional create (``request.ifNoneExist`` on a stable identifier; ``_tag``
  for Provenance, which has no identifier), so sending the same work twice creates nothing new:
  the server answers 201 the first time and 200 after.
- Internal references use ``urn:uuid`` fullUrls derived from those identifiers, so the same record
  always yields the same Bundle, byte for byte (given the same context).
- Everything is checked before anything is returned: a MappingError names the field, and no Bundle
  is half-built.
- Every resource carries a generated narrative (:mod:`bridge.mappers.narrative`) and every
  reference between them, and to the patient and the referral, a ``display``: the chart reads in
  plain words without following a single reference.
"""

from __future__ import annotations

from typing import Any

from bridge.domain import Participant, PeerEncounter, PeerNote, PeerWorker, Referral
from bridge.errors import MappingError
from bridge.mappers.communication import build_note_notification
from bridge.mappers.context import MappingContext, fhir_datetime, token_query, validated_bundle
from bridge.mappers.document_reference import build_document_reference
from bridge.mappers.encounter import build_encounter
from bridge.mappers.labels import labels_for, notice_for, sud_labels
from bridge.mappers.narrative import (
    in_offset,
    note_lines,
    note_title,
    organization_lines,
    person,
    practitioner_lines,
    provenance_lines,
    service_lines,
    session_lines,
    signature,
    when,
    with_text,
)
from bridge.mappers.organization import build_organization
from bridge.mappers.practitioner import build_practitioner
from bridge.mappers.procedure import build_procedure
from bridge.mappers.provenance import build_provenance, provenance_tag


def _entry(full_url: str, resource: dict[str, Any], query: str, *, update: bool = False) -> dict[str, Any]:
    """Conditional create (``ifNoneExist``), or with ``update`` a conditional update on the same query."""
    rtype = resource["resourceType"]
    request = (
        {"method": "PUT", "url": f"{rtype}?{query}"}
        if update
        else {"method": "POST", "url": rtype, "ifNoneExist": query}
    )
    return {"fullUrl": full_url, "resource": resource, "request": request}


def _with_displays(value: Any, displays: dict[str, str]) -> Any:
    """``value`` with a ``display`` on every reference to one of ``displays`` that has none."""
    if isinstance(value, dict):
        out = {k: _with_displays(v, displays) for k, v in value.items()}
        ref = value.get("reference")
        if isinstance(ref, str) and ref in displays and "display" not in value:
            out["display"] = displays[ref]
        return out
    if isinstance(value, list):
        return [_with_displays(v, displays) for v in value]
    return value


def _referral_words(referral: Referral | None) -> str | None:
    if referral is None:
        return None
    return f"referral from {referral.requester}" if referral.requester else "a clinic referral"


def _service_request_ref(
    ctx: MappingContext, encounter: PeerEncounter, referral: Referral | None
) -> str | None:
    if encounter.referral_id is None:
        if referral is not None:
            raise MappingError("encounter.referral_id", "the session does not name the referral given")
        return None
    if referral is None:
        raise MappingError("referral", "required: the session belongs to a referral")
    if referral.id != encounter.referral_id:
        raise MappingError("encounter.referral_id", "does not match the referral given")
    if referral.endpoint != ctx.endpoint:
        raise MappingError("referral.endpoint", "the referral came from another endpoint")
    return f"ServiceRequest/{referral.service_request_id}"


def build_submission_bundle(
    ctx: MappingContext,
    *,
    encounter: PeerEncounter,
    participant: Participant,
    peer: PeerWorker,
    note: PeerNote | None = None,
    cosigner: PeerWorker | None = None,
    referral: Referral | None = None,
    send_encounter: bool = True,
    send_procedure: bool = True,
    cosign_required: bool = True,
    sud_related: bool = True,
    update_note: bool = False,
    validate: bool = True,
    notify_requester: bool = False,
) -> dict[str, Any]:
    """A validated transaction Bundle (JSON-ready dict) for one session and optionally its note.

    Entries, in order: Organization (the peer organization), Practitioner (peer), Practitioner
    (co-signer, if any), Encounter (unless ``send_encounter=False``: for endpoints that cannot
    create Encounters the note then carries the period in ``context.period``), Procedure (the
    service delivered, for ``Task.output``; unless ``send_procedure=False``), DocumentReference and
    Provenance (with a note).

    ``notify_requester=True`` adds, with a note for a referral whose requester is known, a
    Communication telling the referring clinician that the note arrived (conditional create: once).

    ``update_note=True`` sends the DocumentReference and Provenance as conditional updates (``PUT
    DocumentReference?identifier=…``) instead of creates: for a note sent before and changed since
    (co-signed, amended), so the EHR's copy is replaced, not duplicated and not left stale.

    Privacy labels: with a note, the note decides (:func:`bridge.mappers.labels.labels_for`) for
    every clinical entry; without one, ``sud_related`` does (peer recovery support is SUD-related
    unless said otherwise).

    ``validate=False`` skips the R4B model check of the finished Bundle (the same JSON either way):
    the outbound worker's default, as the tests validate what these functions build.
    """
    ctx.patient()  # a session always concerns a patient: fail before building anything
    if encounter.participant_id != participant.id:
        raise MappingError("encounter.participant_id", "does not match the participant given")
    if encounter.peer_id != peer.id:
        raise MappingError("encounter.peer_id", "does not match the peer given")
    if note is not None and note.participant_id != participant.id:
        raise MappingError("note.participant_id", "does not match the participant given")
    if note is None and cosigner is not None:
        raise MappingError("cosigner", "only meaningful with a co-signed note")
    sr_ref = _service_request_ref(ctx, encounter, referral)
    security = labels_for(note) if note is not None else (sud_labels() if sud_related else [])

    org_url = ctx.full_url("organization", ctx.organization_id)
    peer_url = ctx.full_url("practitioner", peer.id)
    org = ctx.organization_name
    entries = [
        _entry(
            org_url,
            with_text(build_organization(ctx), organization_lines(org)),
            ctx.search_by_identifier("organization", ctx.organization_id),
        ),
        _entry(
            peer_url,
            with_text(
                build_practitioner(ctx, peer), practitioner_lines(peer, org, "peer recovery specialist")
            ),
            ctx.search_by_identifier("practitioner", peer.id),
        ),
    ]
    cosigner_url: str | None = None
    if cosigner is not None and cosigner.id != peer.id:
        cosigner_url = ctx.full_url("practitioner", cosigner.id)
        entries.append(
            _entry(
                cosigner_url,
                with_text(
                    build_practitioner(ctx, cosigner), practitioner_lines(cosigner, org, "peer supervisor")
                ),
                ctx.search_by_identifier("practitioner", cosigner.id),
            )
        )
    elif cosigner is not None:
        raise MappingError("note.cosigner_id", "a peer cannot co-sign their own note")

    encounter_url: str | None = None
    if send_encounter:
        encounter_url = ctx.full_url("encounter", encounter.id)
        resource = build_encounter(
            ctx,
            encounter,
            practitioner_ref=peer_url,
            organization_ref=org_url,
            service_request_ref=sr_ref,
            security=[dict(c) for c in security],
        )
        resource = with_text(
            resource,
            session_lines(
                encounter,
                participant=participant.name,
                peer=peer,
                organization=org,
                referral=_referral_words(referral),
            ),
        )
        entries.append(_entry(encounter_url, resource, ctx.search_by_identifier("encounter", encounter.id)))
    if send_procedure:
        resource = build_procedure(
            ctx,
            encounter,
            practitioner_ref=peer_url,
            organization_ref=org_url,
            encounter_ref=encounter_url,
            service_request_ref=sr_ref,
            security=[dict(c) for c in security],
        )
        resource = with_text(
            resource, service_lines(encounter, participant=participant.name, peer=peer, organization=org)
        )
        entries.append(
            _entry(
                ctx.full_url("procedure", encounter.id),
                resource,
                ctx.search_by_identifier("procedure", encounter.id),
            )
        )
    if note is not None:
        note_url = ctx.full_url("note", note.id)
        docref = build_document_reference(
            ctx,
            note,
            peer=peer,
            encounter=encounter if note.encounter_id is not None else None,
            cosigner=cosigner,
            practitioner_ref=peer_url,
            cosigner_ref=cosigner_url,
            organization_ref=org_url,
            encounter_ref=encounter_url,
            cosign_required=cosign_required,
        )
        note_encounter = encounter if note.encounter_id is not None else None
        docref = with_text(
            docref,
            note_lines(
                note,
                encounter=note_encounter,
                participant=participant.name,
                peer=peer,
                cosigner=cosigner,
                status=str(docref["docStatus"]),
                notice=notice_for(note),
            ),
        )
        entries.append(
            _entry(note_url, docref, ctx.search_by_identifier("note", note.id), update=update_note)
        )
        tag = provenance_tag(ctx, note)
        provenance = build_provenance(
            ctx,
            note,
            target_ref=note_url,
            practitioner_ref=peer_url,
            cosigner_ref=cosigner_url,
            organization_ref=org_url,
        )
        zone = note_encounter.start.tzinfo if note_encounter is not None else None
        attested = note.cosigned_at if note.cosigned_at is not None else note.written_at
        provenance["recorded"] = fhir_datetime(in_offset(attested, zone), "note.written_at")
        provenance = with_text(
            provenance,
            provenance_lines(note, encounter=note_encounter, peer=peer, cosigner=cosigner, organization=org),
        )
        entries.append(
            _entry(
                ctx.full_url("provenance", note.id),
                provenance,
                token_query("_tag", tag["system"], tag["code"]),
                update=update_note,
            )
        )
    if notify_requester and note is not None and referral is not None and referral.requester_ref and sr_ref:
        message = build_note_notification(
            ctx,
            note,
            peer=peer,
            encounter=note_encounter,
            recipient_ref=referral.requester_ref,
            service_request_ref=sr_ref,
            note_ref=ctx.full_url("note", note.id),
            organization_ref=org_url,
            security=[dict(c) for c in security],
        )
        entries.append(
            _entry(
                ctx.full_url("note-notification", note.id),
                message,
                ctx.search_by_identifier("note-notification", note.id),
            )
        )
    displays = {
        org_url: org,
        peer_url: signature(peer),
        ctx.patient()["reference"]: person(participant.name),
    }
    if cosigner_url is not None and cosigner is not None:
        displays[cosigner_url] = signature(cosigner)
    if encounter_url is not None:
        displays[encounter_url] = f"Peer support session, {when(encounter.start, encounter.start.tzinfo)}"
    if sr_ref is not None:
        displays[sr_ref] = "Referral to peer support"
    if referral is not None and referral.requester_ref and referral.requester:
        displays[referral.requester_ref] = referral.requester
    if note is not None:
        displays[ctx.full_url("note", note.id)] = note_title(note, note_encounter)
    entries = [{**e, "resource": _with_displays(e["resource"], displays)} for e in entries]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return validated_bundle(bundle) if validate else bundle
