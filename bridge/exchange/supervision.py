"""Supervision: held notes (verdict ``hold``: a co-sign or an escalation missing) and what
releases them.

A held note waits in the outbox (state ``held``) with its reasons. :meth:`Supervision.cosign_note`
and :meth:`Supervision.record_escalation` re-judge it and queue it under the same tracking id once
the verdict allows it. Who may co-sign is :func:`check_cosigner`; refusals are on record too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bridge.domain import PeerNote, PeerWorker, parse
from bridge.errors import ForbiddenError, InputError, NotFoundInStoreError, NotHeldError
from bridge.exchange.authorship import check_cosigner, verify_identity
from bridge.exchange.context import ExchangeContext
from bridge.exchange.payload import OutboxPayload
from bridge.exchange.submissions import FUTURE_SKEW, Submissions, stored_warnings
from bridge.exchange.views import RETURNED, Actor, HeldNote, Submission
from bridge.roles.decision import Verdict
from bridge.store import OutboxItem, OutboxState

ESCALATION_REF = re.compile(r"^(Task|Communication)/[A-Za-z0-9\-.]{1,64}$")
# how an escalation was made (the page's pick list) and who may be told
ESCALATION_METHODS = ("in person", "phone call", "video call", "text message", "secure message")
ESCALATION_ROLES = ("supervisor", "clinician", "crisis team", "988 lifeline", "emergency services")
RETURN_COMMENT_MAX = 2000


def _note(item: OutboxItem) -> PeerNote:
    note = OutboxPayload.read(item.payload).note
    assert note is not None  # a held item is a note (only notes are held)
    return note


class Supervision:
    def __init__(
        self, ctx: ExchangeContext, submissions: Submissions, *, wake: Callable[[str], None]
    ) -> None:
        self.ctx = ctx
        self._submissions = submissions  # judges a note again as it would be sent now
        self._wake = wake

    async def _held_item(self, ref: str) -> OutboxItem:
        """The held note ``ref`` names (a tracking id or a note id)."""
        try:
            items = [await self.ctx.store.outbox.get(ref)]
        except NotFoundInStoreError:
            items = await self.ctx.store.outbox.find(kind="note", item_key=ref)
        items = [i for i in items if i.kind == "note"]
        if not items:
            # a blocked note was never stored: it is as unknown here as a wrong id
            raise NotFoundInStoreError(f"no note or submission {ref!r}")
        held = [i for i in items if i.state is OutboxState.HELD]
        if not held:
            raise NotHeldError(f"submission {items[-1].id} is {items[-1].state.value}, not held")
        return held[-1]

    async def _supervisor(self, actor: Actor, author: PeerWorker) -> PeerWorker:
        if actor.practitioner_id is None:
            raise ForbiddenError("co-signing needs a practitioner identity", rule="cosign.role")
        self.ctx.require_own_organization(actor)
        await verify_identity(self.ctx.directory, actor)  # the token's role is the directory's
        try:
            supervisor = await self.ctx.directory.peer(actor.practitioner_id)
        except InputError:
            raise ForbiddenError("the caller is not a known peer worker", rule="cosign.role") from None
        check_cosigner(actor, supervisor, author, self.ctx.organization)
        return supervisor

    async def cosign_note(self, ref: str, *, actor: Actor, at: datetime | None = None) -> Submission:
        """Co-sign a held note (``ref``: tracking id or note id) as ``actor``, a peer supervisor.

        The note is judged again with the co-signer set: allowed now, it is queued for delivery
        under the same tracking id; still held (an escalation missing), it stays held with the
        remaining reasons. Blocked now (e.g. a consent revoked): PolicyError, still held.
        """
        item = await self._held_item(ref)
        note = _note(item)
        author = await self.ctx.directory.peer(note.author_id)
        try:
            supervisor = await self._supervisor(actor, author)
        except ForbiddenError as exc:
            await self._refused(actor, "note.cosign", item.id, exc)
            raise
        when = at or self.ctx.clock()
        data = {**note.model_dump(mode="json"), "cosigner_id": supervisor.id, "cosigned_at": when.isoformat()}
        cosigned = parse(PeerNote, data)
        return await self._resolve(item, cosigned, actor, "note.cosign", {"cosigner": supervisor.id})

    async def record_escalation(
        self,
        ref: str,
        escalation_ref: str,
        *,
        actor: Actor,
        at: datetime | None = None,
        made: dict[str, str] | None = None,
    ) -> Submission:
        """Record the escalation (``Task/…`` or ``Communication/…``) a risk-of-harm hold waits for.

        The author or a supervisor who may co-sign their notes records it; then as :meth:`cosign_note`.
        """
        if not ESCALATION_REF.match(escalation_ref):
            raise InputError("escalation_ref", "must be Task/<id> or Communication/<id>")
        item = await self._held_item(ref)
        note = _note(item)
        try:
            self.ctx.require_own_organization(actor)
            if actor.practitioner_id != note.author_id:
                await self._supervisor(actor, await self.ctx.directory.peer(note.author_id))
        except ForbiddenError as exc:
            await self._refused(actor, "note.escalation", item.id, exc)
            raise
        escalated = parse(PeerNote, {**note.model_dump(mode="json"), "escalation_ref": escalation_ref})
        detail: dict[str, Any] = {"escalation": escalation_ref}
        if made is not None:
            detail["made"] = made  # who was told (staff, not the participant), in which role, when, how
        return await self._resolve(item, escalated, actor, "note.escalation", detail)

    async def record_escalation_made(
        self,
        ref: str,
        *,
        told: str,
        role: str,
        method: str,
        when: datetime,
        actor: Actor,
        at: datetime | None = None,
    ) -> Submission:
        """Record an escalation as the person who made it tells it (who was told, in which role,
        when and how), without a reference typed by anyone: the bridge names the record
        (``Communication/esc-…``, the bridge's own record id; nothing is written to the EHR) and
        keeps who / when / how in the audit entry. Then as :meth:`record_escalation`."""
        told = " ".join(told.split())
        if not told:
            raise InputError("told", "required: the name of the person you told")
        if len(told) > 200:
            raise InputError("told", "at most 200 characters")
        if role not in ESCALATION_ROLES:
            raise InputError("role", f"must be one of: {', '.join(ESCALATION_ROLES)}")
        if method not in ESCALATION_METHODS:
            raise InputError("method", f"must be one of: {', '.join(ESCALATION_METHODS)}")
        if when.tzinfo is None:
            raise InputError("when", "must carry a time zone")
        now = at or self.ctx.clock()
        if when > now + FUTURE_SKEW:
            raise InputError("when", "is in the future")
        escalation_ref = f"Communication/esc-{uuid.uuid4().hex[:16]}"
        made = {"told_role": role, "method": method, "when": when.isoformat(), "told": told}
        return await self.record_escalation(ref, escalation_ref, actor=actor, at=now, made=made)

    async def return_note(
        self, ref: str, comment: str, *, actor: Actor, at: datetime | None = None
    ) -> HeldNote:
        """Return a held note to its author with a comment (``ref``: tracking id or note id).

        Only a supervisor who may co-sign the author's notes returns it (:func:`check_cosigner`,
        identity from authentication; refusals on record). The note stays held (never sent) with
        the comment beside its reasons; it leaves the queue until the author revises and submits
        it again (same note id, same tracking id), which judges it afresh."""
        comment = comment.strip()
        if not comment:
            raise InputError("comment", "required: tell the author what to change")
        if len(comment) > RETURN_COMMENT_MAX:
            raise InputError("comment", f"at most {RETURN_COMMENT_MAX} characters")
        item = await self._held_item(ref)
        note = _note(item)
        author = await self.ctx.directory.peer(note.author_id)
        try:
            supervisor = await self._supervisor(actor, author)
        except ForbiddenError as exc:
            await self._refused(actor, "note.return", item.id, exc)
            raise
        now = at or self.ctx.clock()
        reasons = [dict(v) for v in item.hold or [] if v.get("severity") != RETURNED]
        marker = {
            "rule": "supervision.returned",
            "severity": RETURNED,
            "message": comment,
            "by": supervisor.id,
            "at": now.isoformat(),
        }
        async with self.ctx.store.transaction(durable=True) as conn:
            done = await self.ctx.store.outbox.rehold(
                item.id, now=now, payload=item.payload, hold=[*reasons, marker], conn=conn
            )
            if not done:
                raise NotHeldError(f"submission {item.id} is no longer held")
            # ids and sizes only: the comment is about a person's note
            detail = {"author": author.id, "comment_chars": len(comment)}
            await self.ctx.audit(actor, "note.return", item.id, detail=detail, at=now, conn=conn)
        held = await self.ctx.store.outbox.get(item.id)
        return HeldNote(
            held.id,
            note,
            held.endpoint,
            self.ctx.submission(held).organization,
            list(held.hold or []),
            held.created_at,
            self._resolved_by(held),
        )

    def _resolved_by(self, item: OutboxItem) -> frozenset[str]:
        by = {
            self.ctx.policy.satisfied_by(str(v["rule"]))
            for v in item.hold or []
            if v.get("severity") == "hold"
        }
        return frozenset(b for b in by if b is not None)

    async def record_refused(self, action: str, ref: str, *, actor: Actor, error: ForbiddenError) -> None:
        """Put a co-sign or escalation refused before it reached the exchange (the caller's role)
        on record; ``ref`` (a tracking id or note id) is recorded as the submission it names."""
        subject = ref
        try:
            subject = (await self.ctx.store.outbox.get(ref)).id
        except NotFoundInStoreError:
            notes = await self.ctx.store.outbox.find(kind="note", item_key=ref)
            subject = notes[-1].id if notes else ref
        await self._refused(actor, action, subject, error)

    async def _refused(self, actor: Actor, action: str, submission_id: str, exc: ForbiddenError) -> None:
        """A refused co-sign or escalation is on record too: who tried, on which submission, and
        the rule that refused (codes and ids only)."""
        await self.ctx.audit(
            actor, action, submission_id, outcome="refused", detail={"rule": exc.rule, "code": exc.code}
        )

    async def _resolve(
        self, item: OutboxItem, note: PeerNote, actor: Actor, action: str, detail: dict[str, Any]
    ) -> Submission:
        store = self.ctx.store
        decision, _ = await self._submissions.judge_note(note)
        now = self.ctx.clock()
        violations = [v.to_dict() for v in decision.violations]
        audit = {**detail, "verdict": decision.verdict.value, "rules_fired": list(decision.rules_fired)}
        if decision.verdict is Verdict.BLOCK:
            await self.ctx.audit(actor, action, item.id, outcome="refused", detail=audit, at=now)
            decision.raise_for_verdict()
        payload = OutboxPayload.read(item.payload).model_copy(update={"note": note}).stored()
        async with store.transaction(durable=True) as conn:
            if decision.verdict is Verdict.HOLD:
                # an escalation recorded while the author revises keeps the supervisor's comment
                kept = [dict(v) for v in item.hold or [] if v.get("severity") == RETURNED]
                if action != "note.escalation":
                    kept = []
                done = await store.outbox.rehold(
                    item.id, now=now, payload=payload, hold=[*violations, *kept], conn=conn
                )
            else:
                done = await store.outbox.release(
                    item.id, now=now, payload=payload, warnings=stored_warnings(violations), conn=conn
                )
            if not done:
                raise NotHeldError(f"submission {item.id} is no longer held")
            await self.ctx.audit(actor, action, item.id, detail=audit, at=now, conn=conn)
            # read in this transaction: the answer says what this request did ("queued"), not how far
            # the worker, woken below, has got with it since
            resolved = await store.outbox.get(item.id, conn=conn)
        if decision.verdict is not Verdict.HOLD:
            self._wake(item.endpoint)
        return self.ctx.submission(resolved, warnings=violations)

    async def list_held(self, *, actor: Actor, mine: bool = False, limit: int = 200) -> list[HeldNote]:
        """The held notes ``actor`` (a peer supervisor) may co-sign, oldest first; with ``mine``,
        the held notes ``actor`` wrote (waiting for their co-sign). Audited as a view."""
        self.ctx.require_own_organization(actor)
        await verify_identity(self.ctx.directory, actor)
        out: list[HeldNote] = []
        items = await self.ctx.store.outbox.list(
            states=[OutboxState.HELD],
            organization=actor.organization,
            include_unowned=actor.organization == self.ctx.organization,
            limit=limit,
        )
        for item in items:
            note = _note(item)
            if mine:
                if actor.practitioner_id is None or note.author_id != actor.practitioner_id:
                    continue
            else:
                try:
                    await self._supervisor(actor, await self.ctx.directory.peer(note.author_id))
                except (ForbiddenError, InputError):
                    continue  # someone else's supervisee
            owner = self.ctx.submission(item).organization
            reasons = list(item.hold or [])
            held = HeldNote(
                item.id, note, item.endpoint, owner, reasons, item.created_at, self._resolved_by(item)
            )
            if not mine and held.returned is not None and not held.risk:
                continue  # with its author for revision; a risk note stays in view until escalated
            out.append(held)
        if out:  # the list shows note text: who saw which held notes is on record
            await self.ctx.audit(
                actor,
                "view-held",
                "held-notes",
                detail={"submissions": [h.submission_id for h in out], "mine": mine},
            )
        return out
