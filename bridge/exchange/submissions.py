"""Submissions: a session or a note, checked (dates, policy) and queued as one unit of work.

One store transaction holds the idempotency key, the outbox item (queued, or ``held`` with the
violations a co-sign or an escalation resolves), the billing ledger row of a session and the audit
entry; the answer is the :class:`~bridge.exchange.views.Submission` read model (202 + tracking id).
Mapping waits for delivery (:mod:`bridge.exchange.delivery`).

Longer than most modules (~480 lines) because the live check (``preview_note``) runs the very
steps a submission runs, without storing: keeping both beside the steps they share is what makes
the page's check and the submission give the same verdict.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import PeerEncounter, PeerNote
from bridge.errors import (
    CosignedRecordError,
    ForbiddenError,
    InputError,
    PolicyError,
    RecordIdTakenError,
    StoreError,
)
from bridge.exchange.authorship import (
    check_author,
    check_cosigner,
    check_record_owner,
    verify_identity,
)
from bridge.exchange.context import ExchangeContext
from bridge.exchange.part2 import part_2
from bridge.exchange.payload import OutboxPayload, PayloadKind
from bridge.exchange.routing import partition_key
from bridge.exchange.views import Actor, Submission
from bridge.roles.decision import Decision, Verdict
from bridge.roles.facts import BillingUsage
from bridge.store import OutboxItem, OutboxState, request_hash

# a device clock a little ahead of ours is not an error; a date further ahead is
FUTURE_SKEW = timedelta(minutes=5)

Judge = Callable[[AsyncConnection], Awaitable[Decision]]

# what the supervision queue can supply (a hold resolved by anything else refuses the note)
SUPERVISION_RESOLVES = frozenset({"cosign", "escalation"})


def stored_warnings(violations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What a submission keeps of its warnings: rule, severity, message. Never the evidence (the
    words of the note that triggered a rule are note text)."""
    return [
        {"rule": str(v["rule"]), "severity": str(v["severity"]), "message": str(v["message"])}
        for v in violations
        if str(v["severity"]) == "warn"
    ]


def check_record_dates(fields: Mapping[str, datetime], *, now: datetime, oldest_days: int) -> None:
    """Refuse absurd dates at the service boundary (the domain records read no clock): a field
    later than ``now`` plus :data:`FUTURE_SKEW`, or earlier than ``oldest_days`` before ``now``
    (setting ``rules.oldest_record_days``), is an :class:`InputError` naming the field."""
    floor = now - timedelta(days=oldest_days)
    # name the latest field for a future date (a session's end) and the earliest for an old one
    by_time = sorted(fields.items(), key=lambda kv: kv[1])
    name, latest = by_time[-1]
    if latest > now + FUTURE_SKEW:
        raise InputError(name, f"is in the future (more than {FUTURE_SKEW.seconds // 60} minutes ahead)")
    name, earliest = by_time[0]
    if earliest < floor:
        raise InputError(name, f"is more than {oldest_days} days in the past (rules.oldest_record_days)")


@dataclass(frozen=True)
class Work:
    """One record to queue (or hold), and what goes with it in the same transaction.

    ``judge``: the policy check, run inside the transaction (raising refuses: nothing is written).
    ``supersedes``: a held copy of the same note this one replaces, released with the new payload
    when it resolves the hold, else kept held with the new payload and reasons; the tracking id
    stays the one that gets delivered and no stale copy stays held behind. ``billed``: a session
    whose billable units (from the decision) go to the billing ledger."""

    payload: OutboxPayload
    endpoint: str
    participant_id: str
    actor: Actor
    idempotency_key: str | None
    judge: Judge
    supersedes: OutboxItem | None = None
    billed: PeerEncounter | None = None

    @property
    def record_id(self) -> str:
        return self.payload.note.id if self.payload.note is not None else self.payload.encounter.id


OnHeld = Callable[[Submission, Actor], Awaitable[None]]


class Submissions:
    def __init__(
        self, ctx: ExchangeContext, *, wake: Callable[[str], None], on_held: OnHeld | None = None
    ) -> None:
        self.ctx = ctx
        self._wake = wake
        self._on_held = on_held  # told of every note the policy holds (the risk alert)

    # --- sessions --------------------------------------------------------------------------------

    async def submit_encounter(
        self, encounter: PeerEncounter, *, actor: Actor, idempotency_key: str | None = None
    ) -> Submission:
        ctx = self.ctx
        await self._check_author(actor, encounter.peer_id, "encounter", encounter.id)
        self._check_dates({"start": encounter.start, "end": encounter.end})
        participant = await ctx.directory.participant(encounter.participant_id)
        peer = await ctx.directory.peer(encounter.peer_id)
        referral = await ctx.referral(encounter.referral_id)
        endpoint = ctx.route(encounter.endpoint, referral, participant)
        participant.identifier_for(endpoint)  # fail now, not at delivery, when the EHR cannot know them
        # the session itself is judged too: endorsement vs the referral's program, dual
        # relationships (block: nothing is queued), billing facts (warnings, in the answer). The
        # billing usage is read in the transaction that records this session's units, under a
        # per-participant lock: two sessions submitted at once are each judged with the other.
        programs = referral.programs if referral is not None else ()

        async def judge(conn: AsyncConnection) -> Decision:
            if encounter.billable:
                await ctx.store.billing.lock(encounter.participant_id, conn=conn)
            decision = ctx.policy.check_encounter(
                encounter,
                peer=peer,
                participant=participant,
                programs=programs,
                usage=await self.usage(encounter, conn=conn),
            )
            ctx.events.verdict("encounter", decision.verdict.value, _fired(decision))
            # a hold only if a rule file made one of these checks one: nothing releases a session
            decision.raise_for_verdict(holds=True)
            return decision

        payload = OutboxPayload(kind=PayloadKind.ENCOUNTER, encounter=encounter)
        earlier = await ctx.store.outbox.find(kind="encounter", item_key=encounter.id)
        await self._check_owner(actor, encounter.id, "encounter", earlier, encounter.peer_id)
        return await self._enqueue(
            Work(payload, endpoint, participant.id, actor, idempotency_key, judge, billed=encounter)
        )

    def _check_dates(self, fields: Mapping[str, datetime]) -> None:
        check_record_dates(
            fields, now=self.ctx.clock(), oldest_days=self.ctx.settings.rules.oldest_record_days
        )

    async def usage(
        self, encounter: PeerEncounter, *, conn: AsyncConnection | None = None
    ) -> BillingUsage | None:
        """Units already billed for the session's participant in each cap's window, this session
        left out (a re-sent session replaces its own row). Windows end at the session's date as
        its own clock read it: the day, the rule file's rolling ``period_days``, the calendar year."""
        if not encounter.billable:
            return None
        spec = self.ctx.policy.spec.billing
        day = encounter.start.date()

        async def units(since: date) -> int:
            return await self.ctx.store.billing.units(
                participant_id=encounter.participant_id,
                since=since,
                until=day,
                exclude_encounter=encounter.id,
                conn=conn,
            )

        today = await units(day) if spec.daily_unit_cap is not None else 0
        period = 0
        if spec.period_unit_cap is not None and spec.period_days is not None:
            period = await units(day - timedelta(days=spec.period_days - 1))
        hours = 0.0
        if spec.yearly_hour_cap is not None:
            hours = await units(day.replace(month=1, day=1)) * spec.unit_minutes / 60
        return BillingUsage(units_today=today, units_in_period=period, hours_in_year=hours)

    # --- notes -----------------------------------------------------------------------------------

    async def check_note(self, note: PeerNote, *, actor: Actor) -> Decision:
        """Dry run: the policy's verdict for this note as it would be sent now. Nothing is stored."""
        await verify_identity(self.ctx.directory, actor)
        if note.cosigner_id is None:
            await check_author(self.ctx.directory, actor, note.author_id)
        self._check_dates({"written_at": note.written_at})
        decision, _ = await self.judge_note(note)
        return decision

    async def judge_note(self, note: PeerNote) -> tuple[Decision, str | None]:
        """The policy's decision on ``note`` now, and the endpoint it would go to (None: peer-team)."""
        ctx = self.ctx
        participant = await ctx.directory.participant(note.participant_id)
        author = await ctx.directory.peer(note.author_id)
        encounter = await ctx.encounter_of(note) if note.encounter_id else None
        referral = await ctx.referral(encounter.referral_id) if encounter is not None else None
        endpoint: str | None = None
        consents = await ctx.directory.consents(participant.id)
        if note.audience.value != "peer-team":
            endpoint = ctx.route(
                note.endpoint or (encounter.endpoint if encounter else None), referral, participant
            )
        decision = ctx.policy.check_note(
            note,
            author=author,
            encounter=encounter,
            recipient=endpoint,
            consents=consents,
            usage=await self.usage(encounter) if encounter is not None else None,
            at=ctx.clock(),
        )
        ctx.events.verdict("note", decision.verdict.value, _fired(decision))
        return decision, endpoint

    async def preview_note(self, note: PeerNote, *, actor: Actor) -> Decision:
        """The submission's own check without storing anything: the verdict :meth:`submit_note`
        would reach for ``note`` now (the same steps, in the same order). A note it would refuse
        raises as it would (PolicyError with the violations, InputError naming the field)."""
        note = await self._admit_note(note, actor, record_refusals=False)
        decision, _ = await self._judge_for_submit(note)
        return decision

    async def _admit_note(self, note: PeerNote, actor: Actor, *, record_refusals: bool = True) -> PeerNote:
        if note.encounter_id is None:
            raise InputError("encounter_id", "required: a note is sent with the session it documents")
        if not record_refusals:
            await verify_identity(self.ctx.directory, actor)
            if note.cosigner_id is None:
                await check_author(self.ctx.directory, actor, note.author_id)
            else:
                await self._check_cosigner(actor, note)
        elif note.cosigner_id is None:
            await self._check_author(actor, note.author_id, "note", note.id)
        else:  # the one co-sign check, as POST /cosign makes it
            await self._check_cosigner(actor, note)
        self._check_dates({"written_at": note.written_at})
        return await part_2(self.ctx, note)

    async def _judge_for_submit(self, note: PeerNote) -> tuple[Decision, str]:
        decision, endpoint = await self.judge_note(note)
        decision.raise_for_verdict()
        holds = [v.rule for v in decision.violations if v.severity.value == "hold"]
        unresolvable = [r for r in holds if self.ctx.policy.satisfied_by(r) not in SUPERVISION_RESOLVES]
        if unresolvable:  # e.g. no Part 2 consent on file: nothing a supervisor can do, refuse as before
            raise PolicyError(
                f"held by policy until resolved: {', '.join(dict.fromkeys(unresolvable))}",
                [v.to_dict() for v in decision.violations],
            )
        if endpoint is None:  # peer-team notes never leave the bridge; the policy says so too
            raise PolicyError("peer-team notes are not sent to an EHR")
        return decision, endpoint

    async def submit_note(
        self, note: PeerNote, *, actor: Actor, idempotency_key: str | None = None
    ) -> Submission:
        note = await self._admit_note(note, actor)
        decision, endpoint = await self._judge_for_submit(note)
        encounter = await self.ctx.encounter_of(note)
        earlier = await self.ctx.store.outbox.find(kind="note", item_key=note.id)
        await self._check_owner(actor, note.id, "note", earlier, note.author_id)
        # sent before (now co-signed or amended): replace the EHR's copy, don't leave it stale
        update = any(i.state is not OutboxState.HELD for i in earlier)
        if update and note.cosigner_id is None and decision.verdict is not Verdict.HOLD:
            await self._check_cosigned(actor, note, earlier)
        payload = OutboxPayload(kind=PayloadKind.NOTE, encounter=encounter, note=note, update=update)
        # a hold (co-sign or escalation missing) keeps the peer's work: stored, never sent while held
        held = [i for i in earlier if i.state is OutboxState.HELD]

        async def judged(conn: AsyncConnection) -> Decision:
            return decision

        sub = await self._enqueue(
            Work(
                payload,
                endpoint,
                note.participant_id,
                actor,
                idempotency_key,
                judged,
                # one held copy per note, whatever the new verdict
                supersedes=held[-1] if held else None,
            )
        )
        if sub.state == "held" and not sub.replayed and self._on_held is not None:
            await self._on_held(sub, actor)
        return sub

    # --- who may submit what (issue 10) ---------------------------------------------------------

    async def _check_author(self, actor: Actor, author_id: str, kind: str, record_id: str) -> None:
        """The caller is who the directory says, and the record's author is the caller (or, for a
        service account, a peer of its organization). A refusal is on record."""
        try:
            await verify_identity(self.ctx.directory, actor)
            await check_author(self.ctx.directory, actor, author_id)
        except ForbiddenError as exc:
            await self._refused(actor, "submit", record_id, kind, exc.code, exc.rule)
            raise

    async def _check_cosigner(self, actor: Actor, note: PeerNote) -> None:
        """A note sent with ``cosigner_id``: the caller is that supervisor and may co-sign the
        author's notes (:func:`check_cosigner`, as ``POST /cosign``). A refusal is on record."""
        directory = self.ctx.directory
        try:
            await verify_identity(directory, actor)
            try:
                supervisor = await directory.peer(str(note.cosigner_id))
            except InputError:
                raise ForbiddenError(
                    "the directory does not know the co-signer", rule="cosign.role"
                ) from None
            author = await directory.peer(note.author_id)
            check_cosigner(actor, supervisor, author, self.ctx.organization)
        except ForbiddenError as exc:
            await self._refused(actor, "note.cosign", note.id, "note", exc.code, exc.rule)
            raise

    async def _check_owner(
        self, actor: Actor, record_id: str, kind: str, earlier: Sequence[OutboxItem], author_id: str
    ) -> None:
        """A record id is its first author's: anyone else's copy is refused (409), on record."""
        authors: list[str] = []
        for item in earlier:
            try:
                payload = OutboxPayload.read(item.payload)
            except ValueError:
                authors.append("(unreadable)")  # whose it is cannot be shown: not the caller's
                continue
            authors.append(payload.note.author_id if payload.note is not None else payload.encounter.peer_id)
        owners = [self.ctx.submission(i).organization for i in earlier]
        try:
            check_record_owner(record_id, authors, author_id, owners, actor.organization)
        except RecordIdTakenError as exc:
            await self._refused(actor, "submit", record_id, kind, exc.code, None)
            raise

    async def _check_cosigned(self, actor: Actor, note: PeerNote, earlier: Sequence[OutboxItem]) -> None:
        """A co-signed note sent before is never silently replaced by an unsigned version: the
        amendment goes through its co-signer (sent with ``cosigner_id``). 409, on record."""
        for item in earlier:
            if item.state is OutboxState.HELD:
                continue
            try:
                sent = OutboxPayload.read(item.payload).note
            except ValueError:
                continue
            if sent is not None and sent.cosigner_id is not None:
                exc = CosignedRecordError(
                    f"note {note.id!r} was co-signed: an amendment is co-signed too (sent with cosigner_id)"
                )
                await self._refused(actor, "submit", note.id, "note", exc.code, None)
                raise exc

    async def _refused(
        self, actor: Actor, action: str, record_id: str, kind: str, code: str, rule: str | None
    ) -> None:
        # codes, ids and the deciding rule only: never the record's text
        detail = {"kind": kind, "record": record_id, "code": code, "rule": rule}
        await self.ctx.audit(actor, action, record_id, outcome="refused", detail=detail)

    # --- the unit of work ------------------------------------------------------------------------

    async def _enqueue(self, work: Work) -> Submission:
        body_hash = request_hash(work.payload.record())
        for attempt in range(2):
            try:
                async with self.ctx.store.transaction(durable=True) as conn:  # the 202 is a promise
                    decision = await work.judge(conn)
                    violations = [v.to_dict() for v in decision.violations]
                    if work.idempotency_key is not None:
                        earlier = await self.ctx.store.idempotency.lookup(
                            work.actor.name, work.idempotency_key, body_hash, conn=conn
                        )
                        if earlier is not None:
                            item = await self.ctx.store.outbox.get(earlier, conn=conn)
                            return self.ctx.submission(item, warnings=violations, replayed=True)
                    item = await self._write(work, decision, violations, body_hash, conn)
                break
            except StoreError:
                # two requests with one key raced; the loser finds the winner's row on the retry
                if work.idempotency_key is None or attempt == 1:
                    raise
        self._wake(work.endpoint)
        return self.ctx.submission(item, warnings=violations)

    async def _write(
        self,
        work: Work,
        decision: Decision,
        violations: list[dict[str, Any]],
        body_hash: str,
        conn: AsyncConnection,
    ) -> OutboxItem:
        """Everything the submission writes, on ``conn``: the item, its ledger row, key and audit."""
        store, now = self.ctx.store, self.ctx.clock()
        payload = work.payload.stored()
        held = violations if decision.verdict is Verdict.HOLD else None
        replaced = False
        if work.supersedes is not None:
            if held is not None:
                replaced = await store.outbox.rehold(
                    work.supersedes.id, now=now, payload=payload, hold=held, conn=conn
                )
            else:
                replaced = await store.outbox.release(work.supersedes.id, now=now, payload=payload, conn=conn)
        if replaced and work.supersedes is not None:
            item = await store.outbox.get(work.supersedes.id, conn=conn)
        else:
            item = await store.outbox.enqueue(
                kind=work.payload.kind.value,
                endpoint=work.endpoint,
                partition_key=partition_key(work.participant_id, work.endpoint),
                item_key=work.record_id,
                payload=payload,
                now=now,
                submitted_by=work.actor.name,
                held=held,
                warnings=stored_warnings(violations),
                organization=work.actor.organization,
                conn=conn,
            )
        if work.billed is not None:
            session = work.billed
            units = int((decision.billing or {}).get("billable_units", 0)) if session.billable else 0
            await store.billing.record(
                encounter_id=session.id,
                submission_id=item.id,
                participant_id=session.participant_id,
                peer_id=session.peer_id,
                service_date=session.start.date(),
                billable_units=units,
                now=now,
                conn=conn,
            )
        if work.idempotency_key is not None:
            await store.idempotency.record(
                work.actor.name, work.idempotency_key, body_hash, item.id, now=now, conn=conn
            )
        detail: dict[str, Any] = {
            "kind": work.payload.kind.value,
            "record": work.record_id,
            "endpoint": work.endpoint,
            "verdict": decision.verdict.value,
            "rules_fired": list(decision.rules_fired),
        }
        if replaced:
            detail["replaced_held"] = True  # the held copy took this version
        await self.ctx.audit(work.actor, "submit", item.id, detail=detail, at=now, conn=conn)
        return item

    # --- reads -----------------------------------------------------------------------------------

    async def get(self, submission_id: str) -> Submission:
        return self.ctx.submission(await self.ctx.store.outbox.get(submission_id))

    async def list(
        self, *, organization: str | None = None, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[Submission]:
        """Oldest first; ``organization``: only the items that belong to it."""
        wanted = [OutboxState(s) for s in states] if states is not None else None
        items = await self.ctx.store.outbox.list(
            states=wanted,
            organization=organization,
            include_unowned=organization == self.ctx.organization,
            limit=limit,
        )
        return [self.ctx.submission(i) for i in items]


def _fired(decision: Decision) -> list[tuple[str, str]]:
    """(rule, severity) of each violation: what the metrics count, never the evidence."""
    return [(v.rule, v.severity.value) for v in decision.violations]
