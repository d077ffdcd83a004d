"""Delivery: what the outbound worker (:mod:`bridge.exchange.outbound`) sends for an outbox item.

:meth:`Delivery.prepare` maps the stored records to the transaction Bundle at delivery time, after
the privacy gate runs again (a consent may have been revoked since the note was accepted); the
gate's decision goes to the audit log whichever way it went.

The participant's Patient is found at the EHR by identifier (cached per endpoint) and referenced
literally (``Patient/<id>``): a conditional reference inside a transaction is resolved by some
servers and stored as the literal text ``Patient?identifier=…`` by others. What the endpoint is
known not to take is left out of the Bundle and listed, with the reason, in :class:`Prepared`.
"""

from __future__ import annotations

from datetime import datetime

from bridge.domain import Participant, PeerNote, PeerWorker
from bridge.errors import InputError
from bridge.exchange.context import ExchangeContext
from bridge.exchange.payload import OutboxPayload
from bridge.exchange.sending import Prepared, Skipped
from bridge.mappers import MappingContext, build_submission_bundle
from bridge.store import OutboxItem


class Delivery:
    def __init__(self, ctx: ExchangeContext) -> None:
        self.ctx = ctx
        self._patients: dict[tuple[str, str, str], str] = {}  # (endpoint, system, value) -> Patient/id

    async def patient_reference(self, participant: Participant, endpoint: str) -> str:
        """``Patient/<id>`` of the participant at ``endpoint``, found by identifier (cached)."""
        ident = participant.identifier_for(endpoint)
        key = (endpoint, ident.system, ident.value)
        cached = self._patients.get(key)
        if cached is not None:
            return cached
        client = self.ctx.clients[endpoint]
        found: list[str] = []
        async for page in client.pages_raw("Patient", {"identifier": f"{ident.system}|{ident.value}"}):
            found += [str(p["id"]) for p in page.matches if p.get("id")]
        if len(set(found)) != 1:
            why = "no Patient there has" if not found else "several Patients there have"
            raise InputError("participant.identifiers", f"{why} the participant's identifier at {endpoint}")
        self._patients[key] = ref = f"Patient/{found[0]}"
        return ref

    async def prepare(self, item: OutboxItem, now: datetime) -> Prepared:
        """The transaction Bundle for ``item`` at delivery time (and what it leaves out, with
        why); the privacy gate runs first."""
        ctx = self.ctx
        payload = OutboxPayload.read(item.payload)
        encounter, note = payload.encounter, payload.note
        participant = await ctx.directory.participant(encounter.participant_id)
        peer = await ctx.directory.peer(encounter.peer_id)
        cosigner = await self._gate(item, note, now) if note is not None else None
        referral = await ctx.referral(encounter.referral_id)
        caps = await ctx.clients[item.endpoint].capabilities()
        mapping = MappingContext.from_organization(
            ctx.settings.organization,
            endpoint=item.endpoint,
            patient_reference=await self.patient_reference(participant, item.endpoint),
            now=now,
        )
        skipped = tuple(
            Skipped(rtype, caps.why_not(rtype, "create"))
            for rtype, wanted in (("Encounter", True), ("Procedure", note is None))
            if wanted and not caps.can_create(rtype)
        )
        bundle = build_submission_bundle(
            mapping,
            encounter=encounter,
            participant=participant,
            peer=peer,
            note=note,
            cosigner=cosigner,
            referral=referral,
            send_encounter=caps.can_create("Encounter"),
            # the session's Procedure went with the session; a note only documents it
            send_procedure=note is None and caps.can_create("Procedure"),
            sud_related=note.sud_related if note is not None else True,
            update_note=payload.update,
            validate=ctx.settings.outbox.validate_fhir,
            notify_requester=ctx.settings.endpoints[item.endpoint].notify_requester,
        )
        return Prepared(bundle, skipped)

    async def _gate(self, item: OutboxItem, note: PeerNote, now: datetime) -> PeerWorker | None:
        """The privacy gate for ``note`` now (audited either way); its co-signer when it passes."""
        ctx = self.ctx
        consents = await ctx.directory.consents(note.participant_id)
        disclosure = ctx.policy.check_disclosure(note, item.endpoint, consents, now)
        # the gate's decision is evidence too: which consent allowed it, or which rule refused
        await ctx.store.audit.append(
            actor=f"bridge:{ctx.owner}",
            action="privacy-gate",
            subject=item.id,
            at=now,
            outcome="ok" if disclosure.allowed else "refused",
            source=item.endpoint,
            detail={
                "verdict": disclosure.verdict.value,
                "rules_fired": list(disclosure.decision.rules_fired),
                "consent": disclosure.consent_id,
                "labels": [c["code"] for c in disclosure.labels],
            },
        )
        disclosure.decision.raise_for_verdict(holds=True, when="at delivery time")
        return await ctx.directory.peer(note.cosigner_id) if note.cosigner_id is not None else None
