"""Pure mapping between the peer-side records (:mod:`bridge.domain`) and FHIR R4.

No I/O, no clock reads (time comes in :class:`MappingContext`), deterministic output: the same
record and context always give the same JSON. Every function returns JSON-ready dicts validated with
``fhir.resources.R4B`` (wire-compatible with R4 for these resources) and raises
:class:`bridge.errors.MappingError` naming the field when a record cannot be mapped; nothing is
half-built.

Public API (one module per resource pair; the module docstrings link the profiles they target):

- :class:`MappingContext` (keyword-only) — organization id/name/identifier_system(/npi), endpoint
  name, ``now``, and the patient's reference at that endpoint (None for what concerns no patient:
  Organization, Practitioner). ``MappingContext.from_organization(settings.organization,
  endpoint=..., now=..., patient_reference=...)``.
- :func:`patient_reference_for` ``(participant, endpoint)`` — ``Patient?identifier=system|value``, a
  conditional reference the server resolves inside the transaction.
- :func:`build_submission_bundle` ``(ctx, *, encounter, participant, peer, note=None, cosigner=None,
  referral=None, send_encounter=True, send_procedure=True, cosign_required=True, sud_related=True)``
  — the transaction Bundle for one session (+ note): conditional creates on stable identifiers and
  ``urn:uuid`` fullUrls, so sending it twice creates nothing new.
- :func:`encounter_to_fhir`, :func:`encounter_to_procedure` — PeerEncounter -> Encounter / Procedure.
- :func:`note_to_document_reference`, :func:`note_to_provenance` — PeerNote -> DocumentReference /
  Provenance.
- :func:`practitioner_to_fhir`, :func:`organization_to_fhir` — the peer (or co-signer) and the peer
  organization.
- :func:`referral_from_fhir` ``(task, service_request, patient|None, endpoint)`` -> Referral and
  :func:`referral_to_fhir` ``(referral, *, owner_ref, requester_ref)`` -> (ServiceRequest, Task).
- :func:`task_with_status` ``(task, status, *, now, reason, business_status, outputs)`` — the updated
  Task for accept / decline / start / complete (BSeR businessStatus, statusReason, outputs).
- :func:`labels_for` ``(note)`` — the DS4P labels; :data:`PART2_NOTICE` the §2.32 notice.
- :mod:`bridge.mappers.subscription` — the Subscription the bridge asks an EHR for
  (``backport_subscription``, ``criteria_subscription``) and ``parse_notification`` of what it posts.

Identifiers: ``{identifier_system}/{kind}|{record id}`` with kind one of organization,
practitioner, encounter, procedure, note (and a ``provenance`` meta.tag); ``urn:uuid`` fullUrls
are UUIDv5 of that identifier.
"""

from __future__ import annotations

from bridge.mappers.bundle import build_submission_bundle
from bridge.mappers.context import MappingContext, patient_reference_for
from bridge.mappers.document_reference import note_to_document_reference
from bridge.mappers.encounter import encounter_to_fhir
from bridge.mappers.labels import PART2_NOTICE, labels_for
from bridge.mappers.organization import organization_to_fhir
from bridge.mappers.practitioner import practitioner_to_fhir
from bridge.mappers.procedure import encounter_to_procedure
from bridge.mappers.provenance import note_to_provenance
from bridge.mappers.referral import referral_from_fhir, referral_id_for, referral_to_fhir, task_with_status

__all__ = [
    "PART2_NOTICE",
    "MappingContext",
    "build_submission_bundle",
    "encounter_to_fhir",
    "encounter_to_procedure",
    "labels_for",
    "note_to_document_reference",
    "note_to_provenance",
    "organization_to_fhir",
    "patient_reference_for",
    "practitioner_to_fhir",
    "referral_from_fhir",
    "referral_id_for",
    "referral_to_fhir",
    "task_with_status",
]
