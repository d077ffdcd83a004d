"""Application services: what the web layer and the CLI call (see ``bridge/exchange/__init__.py``).

Outbound: records are checked (policy) and queued in one store transaction with the idempotency
key and an audit entry; the answer is a tracking id (202). Mapping happens at delivery time, in
:meth:`ExchangeService.prepare`, where the privacy gate runs again (a consent may have been
revoked since) before anything is sent. Inbound and the closed loop are delegated to
:class:`~bridge.exchange.inbound.InboundSync` and the Task state machine.

Held notes (verdict ``hold``: a co-sign or an escalation missing) are accepted and stored ``held``
with their reasons (the violations); :meth:`ExchangeService.cosign_note` and
:meth:`ExchangeService.record_escalation` re-judge them and queue them (same tracking id) once the
verdict allows it. Who may co-sign is :func:`check_cosigner`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.clients import AsyncFhirClient, RetryPolicy
from bridge.config import Settings
from bridge.domain import (
    Participant,
    PeerEncounter,
    PeerNote,
    PeerWorker,
    Referral,
    ReferralStatus,
    Role,
    parse,
)
from bridge.errors import (
    BridgeError,
    ConsentRequiredError,
    FhirRequestError,
    ForbiddenError,
    InputError,
    NotFoundInStoreError,
    NotHeldError,
    PolicyError,
    StateTransitionError,
    StoreError,
)
from bridge.exchange.directory import Directory
from bridge.exchange.inbound import InboundSettings, InboundSync, NotificationResult
from bridge.exchange.outbound import OutboundSettings, OutboundWorker
from bridge.exchange.routing import partition_key, route
from bridge.exchange.task_state import TARGET, ReferralAction, check_transition, parse_action
from bridge.mappers import (
    MappingContext,
    build_submission_bundle,
    organization_to_fhir,
    patient_reference_for,
    referral_from_fhir,
    task_with_status,
)
from bridge.roles.decision import Decision, Verdict
from bridge.roles.facts import BillingUsage
from bridge.roles.policy import Policy
from bridge.store import OutboxItem, OutboxState, Store, open_store, request_hash

Clock = Callable[[], datetime]
# holds the supervision queue resolves: a co-sign, or an escalation recorded (risk of harm, crisis)
SUPERVISION_HOLDS = frozenset({"supervision.cosign", "content.risk-of-harm", "escalation.crisis-note"})
ESCALATION_REF = re.compile(r"^(Task|Communication)/[A-Za-z0-9\-.]{1,64}$")


def stored_warnings(violations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What a submission keeps of its warnings: rule, severity, message. Never the evidence (the
    words of the note that triggered a rule are note text)."""
    return [
        {"rule": str(v["rule"]), "severity": str(v["severity"]), "message": str(v["message"])}
        for v in violations
        if str(v["severity"]) == "warn"
    ]


def utc_now() -> datetime:
    return datetime.now(UTC)


# a device clock a little ahead of ours is not an error; a date further ahead is
FUTURE_SKEW = timedelta(minutes=5)


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
class Actor:
    """Who is calling and from where (goes to the audit log). ``name`` scopes idempotency keys."""

    name: str
    role: str
    organization: str
    source: str | None = None
    practitioner_id: str | None = None  # the directory's PeerWorker id, when the caller is one


@dataclass(frozen=True)
class SubmissionStatus:
    id: str
    kind: str
    record_id: str
    endpoint: str
    state: str
    attempts: int
    fhir_ids: dict[str, str]
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False  # answered from an earlier request with the same Idempotency-Key
    hold_reasons: list[dict[str, Any]] = field(default_factory=list)  # state "held": what it waits for

    @classmethod
    def of(
        cls, item: OutboxItem, *, warnings: Sequence[Mapping[str, Any]] = (), replayed: bool = False
    ) -> SubmissionStatus:
        ids: dict[str, str] = {}
        for ref in (item.result or {}).get("refs", []):
            ids.setdefault(str(ref).split("/")[0], str(ref))
        return cls(
            id=item.id,
            kind=item.kind,
            record_id=item.item_key,
            endpoint=item.endpoint,
            state=item.state.value,
            attempts=item.attempts,
            fhir_ids=ids,
            last_error=item.last_error,
            created_at=item.created_at,
            updated_at=item.updated_at,
            delivered_at=item.delivered_at,
            # the answer to a submission carries the full warnings; a later read the stored ones
            warnings=[dict(w) for w in warnings] if warnings else [dict(w) for w in item.warnings or []],
            replayed=replayed,
            hold_reasons=[dict(v) for v in item.hold or []],
        )


@dataclass(frozen=True)
class HeldNote:
    """A held note as a supervisor sees it to co-sign (the note carries PHI: show, never log)."""

    submission_id: str
    note: PeerNote
    endpoint: str
    hold_reasons: list[dict[str, Any]]
    held_since: datetime


def check_cosigner(actor: Actor, supervisor: PeerWorker, author: PeerWorker, organization: str) -> None:
    """May ``actor`` (who is ``supervisor`` in the directory) co-sign ``author``'s note? Pure.

    A peer supervisor of the bridge's organization and the author's, and where the directory says
    who supervises the author, that supervisor. Raises ForbiddenError naming the deciding rule.
    """
    if actor.organization != organization:
        raise ForbiddenError("callers act only within their own organization", rule="same-organization")
    if actor.role != Role.PEER_SUPERVISOR.value or supervisor.role is not Role.PEER_SUPERVISOR:
        raise ForbiddenError("only a peer supervisor co-signs notes", rule="cosign.role")
    if supervisor.organization_id != author.organization_id:
        raise ForbiddenError("the co-signer works for another organization", rule="cosign.organization")
    if author.supervisor_id is not None and author.supervisor_id != supervisor.id:
        raise ForbiddenError("only the author's own supervisor co-signs this note", rule="cosign.supervisor")


def _json(record: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record.model_dump_json())
    return data


def instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ExchangeService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clients: Mapping[str, AsyncFhirClient],
        directory: Directory,
        policy: Policy,
        *,
        owner: str | None = None,
        clock: Clock = utc_now,
        outbound: OutboundSettings | None = None,
        inbound: InboundSettings | None = None,
        concurrency: Mapping[str, int] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clients = dict(clients)
        self.directory = directory
        self.policy = policy
        self.owner = owner or instance_name()
        self.clock = clock
        self._org_refs: dict[str, str] = {}
        self.worker = OutboundWorker(
            store,
            self.clients,
            self.prepare,
            owner=self.owner,
            clock=clock,
            settings=outbound
            or OutboundSettings(
                lease_seconds=settings.store.lease_seconds,
                max_attempts=settings.outbox.max_attempts,
                base_backoff_seconds=settings.outbox.base_backoff_seconds,
                max_backoff_seconds=settings.outbox.max_backoff_seconds,
            ),
            concurrency=concurrency,
        )
        self.inbound = InboundSync(
            store,
            self.clients,
            self.reduce_referral,
            owner_for=self.organization_ref,
            clock=clock,
            settings=inbound or default_inbound_settings(settings),
            actor=f"bridge:{self.owner}",
            wanted=self.supporting_references,
        )

    # --- lifecycle -------------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        directory: Directory,
        policy: Policy | None = None,
        store: Store | None = None,
        store_schema: str | None = None,
        **kwargs: Any,
    ) -> ExchangeService:
        """Open the store (migrating it), one client per endpoint, and load the rule set."""
        if policy is None:
            from bridge.roles.loader import load_policy

            policy = load_policy(settings.path(settings.rules.dir), settings.rules.jurisdiction)
        store = store or await open_store(settings.store.url, schema=store_schema)
        clients = {
            name: outbox_client(
                name, ep, base_dir=Path(settings.base_dir), lease_seconds=settings.store.lease_seconds
            )
            for name, ep in settings.endpoints.items()
        }
        return cls(settings, store, clients, directory, policy, **kwargs)

    async def start(self) -> None:
        """Start the background workers (outbound delivery, inbound sync)."""
        self.worker.start()
        self.inbound.start()

    async def stop(self) -> None:
        await self.inbound.stop()
        await self.worker.stop()

    async def close(self) -> None:
        await self.stop()
        for client in self.clients.values():
            await client.aclose()
        await self.store.close()

    # --- outbound --------------------------------------------------------------------------------

    async def _route(self, explicit: str | None, referral: Referral | None, participant: Participant) -> str:
        return route(
            explicit=explicit,
            referral_endpoint=referral.endpoint if referral is not None else None,
            home_endpoint=participant.home_endpoint,
            default_endpoint=self.settings.default_endpoint,
            configured=self.clients.keys(),
        )

    async def _referral(self, referral_id: str | None) -> Referral | None:
        if referral_id is None:
            return None
        try:
            return (await self.store.inbox.get(referral_id)).referral
        except NotFoundInStoreError:
            raise InputError("referral_id", "no such referral in the inbox") from None

    async def submit_encounter(
        self, encounter: PeerEncounter, *, actor: Actor, idempotency_key: str | None = None
    ) -> SubmissionStatus:
        self._check_dates({"start": encounter.start, "end": encounter.end})
        participant = await self.directory.participant(encounter.participant_id)
        peer = await self.directory.peer(encounter.peer_id)
        referral = await self._referral(encounter.referral_id)
        endpoint = await self._route(encounter.endpoint, referral, participant)
        participant.identifier_for(endpoint)  # fail now, not at delivery, when the EHR cannot know them
        # the session itself is judged too: endorsement vs the referral's program, dual
        # relationships (block: nothing is queued), billing facts (warnings, in the answer). The
        # billing usage is read in the transaction that records this session's units, under a
        # per-participant lock: two sessions submitted at once are each judged with the other.
        programs = referral.programs if referral is not None else ()

        async def judge(conn: AsyncConnection) -> Decision:
            if encounter.billable:
                await self.store.billing.lock(encounter.participant_id, conn=conn)
            decision = self.policy.check_encounter(
                encounter,
                peer=peer,
                participant=participant,
                programs=programs,
                usage=await self._usage(encounter, conn=conn),
            )
            decision.raise_for_verdict()
            if decision.verdict is Verdict.HOLD:  # only if a rule file made one of these checks a hold
                raise PolicyError(
                    f"held by policy until resolved: {', '.join(decision.rules_fired)}",
                    [v.to_dict() for v in decision.violations],
                )
            return decision

        payload = {"encounter": _json(encounter)}
        return await self._enqueue(
            "encounter",
            encounter.id,
            endpoint,
            participant.id,
            payload,
            actor,
            idempotency_key,
            None,
            billed=encounter,
            judge=judge,
        )

    def _check_dates(self, fields: Mapping[str, datetime]) -> None:
        check_record_dates(fields, now=self.clock(), oldest_days=self.settings.rules.oldest_record_days)

    async def _usage(
        self, encounter: PeerEncounter, *, conn: AsyncConnection | None = None
    ) -> BillingUsage | None:
        """Units already billed for the session's participant in each cap's window, this session
        left out (a re-sent session replaces its own row). Windows end at the session's date as
        its own clock read it: the day, the rule file's rolling ``period_days``, the calendar year."""
        if not encounter.billable:
            return None
        spec = self.policy.spec.billing
        day = encounter.start.date()

        async def units(since: Any) -> int:
            return await self.store.billing.units(
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

    async def check_note(self, note: PeerNote, *, actor: Actor) -> Decision:
        """Dry run: the policy's verdict for this note as it would be sent now. Nothing is stored."""
        self._check_dates({"written_at": note.written_at})
        decision, _ = await self._judge_note(note, actor)
        return decision

    async def _judge_note(self, note: PeerNote, actor: Actor) -> tuple[Decision, str | None]:
        participant = await self.directory.participant(note.participant_id)
        author = await self.directory.peer(note.author_id)
        encounter = await self._encounter_of(note) if note.encounter_id else None
        referral = await self._referral(encounter.referral_id) if encounter is not None else None
        endpoint: str | None = None
        consents = await self.directory.consents(participant.id)
        if note.audience.value != "peer-team":
            endpoint = await self._route(
                note.endpoint or (encounter.endpoint if encounter else None), referral, participant
            )
        decision = self.policy.check_note(
            note,
            author=author,
            encounter=encounter,
            recipient=endpoint,
            consents=consents,
            usage=await self._usage(encounter) if encounter is not None else None,
            at=self.clock(),
        )
        return decision, endpoint

    async def _encounter_of(self, note: PeerNote) -> PeerEncounter:
        items = await self.store.outbox.find(kind="encounter", item_key=str(note.encounter_id))
        if not items:
            raise InputError("encounter_id", "unknown session: submit the encounter first")
        encounter = PeerEncounter.model_validate_json(json.dumps(items[-1].payload["encounter"]))
        # the mappers refuse these at delivery; refusing them here keeps them out of the dead letters
        if note.participant_id != encounter.participant_id:
            raise InputError("participant_id", "not the participant of the session this note documents")
        if note.author_id != encounter.peer_id:
            raise InputError("author_id", "not the peer who held the session this note documents")
        return encounter

    async def submit_note(
        self, note: PeerNote, *, actor: Actor, idempotency_key: str | None = None
    ) -> SubmissionStatus:
        if note.encounter_id is None:
            raise InputError("encounter_id", "required: a note is sent with the session it documents")
        self._check_dates({"written_at": note.written_at})
        decision, endpoint = await self._judge_note(note, actor)
        if decision.verdict is Verdict.BLOCK:
            decision.raise_for_verdict()
        unresolvable = [v.rule for v in decision.violations if v.severity.value == "hold"]
        unresolvable = [r for r in unresolvable if r not in SUPERVISION_HOLDS]
        if unresolvable:  # e.g. no Part 2 consent on file: nothing a supervisor can do, refuse as before
            raise PolicyError(
                f"held by policy until resolved: {', '.join(dict.fromkeys(unresolvable))}",
                [v.to_dict() for v in decision.violations],
            )
        if endpoint is None:  # peer-team notes never leave the bridge; the policy says so too
            raise PolicyError("peer-team notes are not sent to an EHR")
        encounter = await self._encounter_of(note)
        payload: dict[str, Any] = {"note": _json(note), "encounter": _json(encounter)}
        earlier = await self.store.outbox.find(kind="note", item_key=note.id)
        if any(i.state is not OutboxState.HELD for i in earlier):
            # sent before (now co-signed or amended): replace the EHR's copy, don't leave it stale
            payload["update"] = True
        # a hold (co-sign or escalation missing) keeps the peer's work: stored, never sent while held
        held = [i for i in earlier if i.state is OutboxState.HELD]
        resolves = held[-1] if held else None  # one held copy per note, whatever the new verdict
        return await self._enqueue(
            "note",
            note.id,
            endpoint,
            note.participant_id,
            payload,
            actor,
            idempotency_key,
            decision,
            resolves,
        )

    async def _enqueue(
        self,
        kind: str,
        record_id: str,
        endpoint: str,
        participant_id: str,
        payload: dict[str, Any],
        actor: Actor,
        idempotency_key: str | None,
        decision: Decision | None,
        supersedes: OutboxItem | None = None,
        billed: PeerEncounter | None = None,
        judge: Callable[[AsyncConnection], Awaitable[Decision]] | None = None,
    ) -> SubmissionStatus:
        """Queue (or hold) one record. ``supersedes``: a held copy of the same note that this
        submission replaces: released with the new payload when it resolves the hold (re-sent
        co-signed), else kept held with the new payload and reasons (re-sent edited). The peer's
        tracking id stays the one that gets delivered, and no stale copy stays held behind.
        ``billed``: a session whose billable units (from the decision) go to the billing ledger
        with it. ``judge``: the policy check, run inside the transaction (its decision replaces
        ``decision``; raising refuses the submission and nothing is written)."""
        now = self.clock()
        # what the caller sent, not what we derived from it (the "update" flag, the session copy):
        # a retried request must hash the same whatever happened in between
        body_hash = request_hash({"kind": kind, "record": payload[kind]})
        for attempt in range(2):
            try:
                async with self.store.transaction(durable=True) as conn:  # the 202 is a promise
                    if judge is not None:
                        decision = await judge(conn)
                    warnings = [v.to_dict() for v in decision.violations] if decision is not None else []
                    held = warnings if decision is not None and decision.verdict is Verdict.HOLD else None
                    if idempotency_key is not None:
                        earlier = await self.store.idempotency.lookup(
                            actor.name, idempotency_key, body_hash, conn=conn
                        )
                        if earlier is not None:
                            item = await self.store.outbox.get(earlier, conn=conn)
                            return SubmissionStatus.of(item, warnings=warnings, replayed=True)
                    replaced = False
                    if supersedes is not None and held is not None:
                        replaced = await self.store.outbox.rehold(
                            supersedes.id, now=now, payload=payload, hold=held, conn=conn
                        )
                    elif supersedes is not None:
                        replaced = await self.store.outbox.release(
                            supersedes.id, now=now, payload=payload, conn=conn
                        )
                    if replaced and supersedes is not None:
                        item = await self.store.outbox.get(supersedes.id, conn=conn)
                    else:
                        item = await self.store.outbox.enqueue(
                            kind=kind,
                            endpoint=endpoint,
                            partition_key=partition_key(participant_id, endpoint),
                            item_key=record_id,
                            payload=payload,
                            now=now,
                            submitted_by=actor.name,
                            held=held,
                            warnings=stored_warnings(warnings),
                            conn=conn,
                        )
                    if billed is not None:
                        session = billed
                        units = int((decision.billing or {}).get("billable_units", 0)) if decision else 0
                        units = units if session.billable else 0
                        await self.store.billing.record(
                            encounter_id=session.id,
                            submission_id=item.id,
                            participant_id=session.participant_id,
                            peer_id=session.peer_id,
                            service_date=session.start.date(),
                            billable_units=units,
                            now=now,
                            conn=conn,
                        )
                    if idempotency_key is not None:
                        await self.store.idempotency.record(
                            actor.name, idempotency_key, body_hash, item.id, now=now, conn=conn
                        )
                    detail: dict[str, Any] = {"kind": kind, "record": record_id, "endpoint": endpoint}
                    if decision is not None:
                        detail["verdict"] = decision.verdict.value
                        detail["rules_fired"] = list(decision.rules_fired)
                    if replaced:
                        detail["replaced_held"] = True  # the held copy took this version
                    await self.store.audit.append(
                        actor=actor.name,
                        action="submit",
                        subject=item.id,
                        at=now,
                        source=actor.source,
                        detail=detail,
                        conn=conn,
                    )
                break
            except StoreError:
                # two requests with one key raced; the loser finds the winner's row on the retry
                if idempotency_key is None or attempt == 1:
                    raise
        self.worker.wake(endpoint)
        return SubmissionStatus.of(item, warnings=warnings)

    async def submission(self, submission_id: str) -> SubmissionStatus:
        return SubmissionStatus.of(await self.store.outbox.get(submission_id))

    async def list_submissions(
        self, *, states: Sequence[str] | None = None, limit: int = 100
    ) -> list[SubmissionStatus]:
        wanted = [OutboxState(s) for s in states] if states is not None else None
        return [SubmissionStatus.of(i) for i in await self.store.outbox.list(states=wanted, limit=limit)]

    # --- held notes: co-sign, escalation -------------------------------------------------------

    async def _held_item(self, ref: str) -> OutboxItem:
        """The held note ``ref`` names (a tracking id or a note id)."""
        try:
            items = [await self.store.outbox.get(ref)]
        except NotFoundInStoreError:
            items = await self.store.outbox.find(kind="note", item_key=ref)
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
        try:
            supervisor = await self.directory.peer(actor.practitioner_id)
        except InputError:
            raise ForbiddenError("the caller is not a known peer worker", rule="cosign.role") from None
        check_cosigner(actor, supervisor, author, self.settings.organization.id)
        return supervisor

    async def cosign_note(self, ref: str, *, actor: Actor, at: datetime | None = None) -> SubmissionStatus:
        """Co-sign a held note (``ref``: tracking id or note id) as ``actor``, a peer supervisor.

        The note is judged again with the co-signer set: allowed now, it is queued for delivery
        under the same tracking id; still held (an escalation missing), it stays held with the
        remaining reasons. Blocked now (e.g. a consent revoked): PolicyError, still held.
        """
        item = await self._held_item(ref)
        note = PeerNote.model_validate_json(json.dumps(item.payload["note"]))
        author = await self.directory.peer(note.author_id)
        try:
            supervisor = await self._supervisor(actor, author)
        except ForbiddenError as exc:
            await self._refused(actor, "note.cosign", item.id, exc)
            raise
        when = at or self.clock()
        data = {**note.model_dump(mode="json"), "cosigner_id": supervisor.id, "cosigned_at": when.isoformat()}
        cosigned = parse(PeerNote, data)
        return await self._resolve(item, cosigned, actor, "note.cosign", {"cosigner": supervisor.id})

    async def record_escalation(
        self, ref: str, escalation_ref: str, *, actor: Actor, at: datetime | None = None
    ) -> SubmissionStatus:
        """Record the escalation (``Task/…`` or ``Communication/…``) a risk-of-harm hold waits for.

        The author or a supervisor who may co-sign their notes records it; then as :meth:`cosign_note`.
        """
        if not ESCALATION_REF.match(escalation_ref):
            raise InputError("escalation_ref", "must be Task/<id> or Communication/<id>")
        item = await self._held_item(ref)
        note = PeerNote.model_validate_json(json.dumps(item.payload["note"]))
        try:
            if actor.organization != self.settings.organization.id:
                raise ForbiddenError(
                    "callers act only within their own organization", rule="same-organization"
                )
            if actor.practitioner_id != note.author_id:
                await self._supervisor(actor, await self.directory.peer(note.author_id))
        except ForbiddenError as exc:
            await self._refused(actor, "note.escalation", item.id, exc)
            raise
        escalated = parse(PeerNote, {**note.model_dump(mode="json"), "escalation_ref": escalation_ref})
        return await self._resolve(item, escalated, actor, "note.escalation", {"escalation": escalation_ref})

    async def record_refused(self, action: str, ref: str, *, actor: Actor, error: ForbiddenError) -> None:
        """Put a co-sign or escalation refused before it reached the exchange (the caller's role)
        on record; ``ref`` (a tracking id or note id) is recorded as the submission it names."""
        subject = ref
        try:
            subject = (await self.store.outbox.get(ref)).id
        except NotFoundInStoreError:
            notes = await self.store.outbox.find(kind="note", item_key=ref)
            subject = notes[-1].id if notes else ref
        await self._refused(actor, action, subject, error)

    async def _refused(self, actor: Actor, action: str, submission_id: str, exc: ForbiddenError) -> None:
        """A refused co-sign or escalation is on record too: who tried, on which submission, and
        the rule that refused (codes and ids only)."""
        await self.store.audit.append(
            actor=actor.name,
            action=action,
            subject=submission_id,
            at=self.clock(),
            outcome="refused",
            source=actor.source,
            detail={"rule": exc.rule, "code": exc.code},
        )

    async def _resolve(
        self, item: OutboxItem, note: PeerNote, actor: Actor, action: str, detail: dict[str, Any]
    ) -> SubmissionStatus:
        decision, _ = await self._judge_note(note, actor)
        now = self.clock()
        violations = [v.to_dict() for v in decision.violations]
        audit = {**detail, "verdict": decision.verdict.value, "rules_fired": list(decision.rules_fired)}
        if decision.verdict is Verdict.BLOCK:
            await self.store.audit.append(
                actor=actor.name,
                action=action,
                subject=item.id,
                at=now,
                outcome="refused",
                source=actor.source,
                detail=audit,
            )
            decision.raise_for_verdict()
        payload = {**item.payload, "note": _json(note)}
        async with self.store.transaction(durable=True) as conn:
            if decision.verdict is Verdict.HOLD:
                done = await self.store.outbox.rehold(
                    item.id, now=now, payload=payload, hold=violations, conn=conn
                )
            else:
                done = await self.store.outbox.release(
                    item.id, now=now, payload=payload, warnings=stored_warnings(violations), conn=conn
                )
            if not done:
                raise NotHeldError(f"submission {item.id} is no longer held")
            await self.store.audit.append(
                actor=actor.name,
                action=action,
                subject=item.id,
                at=now,
                source=actor.source,
                detail=audit,
                conn=conn,
            )
        if decision.verdict is not Verdict.HOLD:
            self.worker.wake(item.endpoint)
        return SubmissionStatus.of(await self.store.outbox.get(item.id), warnings=violations)

    async def list_held(self, *, actor: Actor, mine: bool = False, limit: int = 200) -> list[HeldNote]:
        """The held notes ``actor`` (a peer supervisor) may co-sign, oldest first; with ``mine``,
        the held notes ``actor`` wrote (waiting for their co-sign). Audited as a view."""
        if actor.organization != self.settings.organization.id:
            raise ForbiddenError("callers act only within their own organization", rule="same-organization")
        out: list[HeldNote] = []
        for item in await self.store.outbox.list(states=[OutboxState.HELD], limit=limit):
            note = PeerNote.model_validate_json(json.dumps(item.payload["note"]))
            if mine:
                if actor.practitioner_id is not None and note.author_id == actor.practitioner_id:
                    out.append(HeldNote(item.id, note, item.endpoint, list(item.hold or []), item.created_at))
                continue
            try:
                await self._supervisor(actor, await self.directory.peer(note.author_id))
            except (ForbiddenError, InputError):
                continue  # someone else's supervisee
            out.append(HeldNote(item.id, note, item.endpoint, list(item.hold or []), item.created_at))
        if out:  # the list shows note text: who saw which held notes is on record
            await self.store.audit.append(
                actor=actor.name,
                action="view-held",
                subject="held-notes",
                at=self.clock(),
                source=actor.source,
                detail={"submissions": [h.submission_id for h in out], "mine": mine},
            )
        return out

    async def outbox_counts(self) -> dict[str, dict[str, int]]:
        return {name: await self.store.outbox.counts(endpoint=name) for name in self.clients}

    async def prepare(self, item: OutboxItem, now: datetime) -> Mapping[str, Any]:
        """The transaction Bundle for ``item`` at delivery time; the privacy gate runs first."""
        encounter = PeerEncounter.model_validate_json(json.dumps(item.payload["encounter"]))
        note = (
            PeerNote.model_validate_json(json.dumps(item.payload["note"])) if "note" in item.payload else None
        )
        participant = await self.directory.participant(encounter.participant_id)
        peer = await self.directory.peer(encounter.peer_id)
        cosigner: PeerWorker | None = None
        if note is not None:
            consents = await self.directory.consents(participant.id)
            disclosure = self.policy.check_disclosure(note, item.endpoint, consents, now)
            # the gate's decision is evidence too: which consent allowed it, or which rule refused
            await self.store.audit.append(
                actor=f"bridge:{self.owner}",
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
            if not disclosure.allowed:
                rules = list(disclosure.decision.rules_fired)
                violations = [v.to_dict() for v in disclosure.decision.violations]
                if rules == ["privacy.consent-required"]:
                    raise ConsentRequiredError(
                        "no 42 CFR Part 2 consent on file for this recipient at delivery time", violations
                    )
                raise PolicyError(f"disclosure refused at delivery time: {', '.join(rules)}", violations)
            if note.cosigner_id is not None:
                cosigner = await self.directory.peer(note.cosigner_id)
        referral = await self._referral(encounter.referral_id) if encounter.referral_id else None
        caps = await self.clients[item.endpoint].capabilities()
        ctx = MappingContext.from_organization(
            self.settings.organization,
            endpoint=item.endpoint,
            patient_reference=patient_reference_for(participant, item.endpoint),
            now=now,
        )
        return build_submission_bundle(
            ctx,
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
            update_note=bool(item.payload.get("update")),
        )

    # --- inbound ---------------------------------------------------------------------------------

    async def organization_ref(self, endpoint: str) -> str:
        """``Organization/<id>`` of the peer organization at ``endpoint`` (created when missing)."""
        if endpoint in self._org_refs:
            return self._org_refs[endpoint]
        org = self.settings.organization
        ctx = MappingContext.from_organization(org, endpoint=endpoint, now=self.clock())  # no patient
        ident = ctx.identifier("organization", org.id)
        result = await self.clients[endpoint].create_if_none_exist(
            organization_to_fhir(ctx), {"identifier": f"{ident['system']}|{ident['value']}"}
        )
        ref = f"Organization/{result.id}"
        self._org_refs[endpoint] = ref
        return ref

    def reduce_referral(
        self,
        task: Mapping[str, Any],
        service_request: Mapping[str, Any],
        patient: Mapping[str, Any] | None,
        endpoint: str,
        supporting: Sequence[Mapping[str, Any]] = (),
    ) -> Referral:
        """Minimum necessary first (the policy's allow-list), then the peer-side record."""
        view = self.policy.peer_view(
            task=task, service_request=service_request, patient=patient, supporting=supporting
        )
        return referral_from_fhir(
            view["task"], view["service_request"], view["patient"], endpoint, supporting=view["supporting"]
        )

    def supporting_references(
        self, task: Mapping[str, Any], service_request: Mapping[str, Any]
    ) -> Sequence[str]:
        """What the inbound sync may read beside a referral: only references the peer view keeps."""
        return self.policy.fetchable_references(
            self.policy.peer_view(task=task, service_request=service_request)
        )

    async def handle_notification(
        self, body: Mapping[str, Any] | None, *, endpoint: str | None = None
    ) -> NotificationResult:
        return await self.inbound.handle_notification(body, endpoint=endpoint)

    async def list_referrals(
        self,
        *,
        actor: Actor,
        statuses: Sequence[ReferralStatus] | None = None,
        endpoint: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Referral]:
        entries = await self.store.inbox.list(
            statuses=list(statuses) if statuses is not None else None,
            endpoint=endpoint,
            limit=limit,
            offset=offset,
        )
        if entries:  # a list shows contact details: who saw which referrals is on record
            await self.store.audit.append(
                actor=actor.name,
                action="view-list",
                subject="inbox",
                at=self.clock(),
                source=actor.source,
                detail={"referrals": [e.referral.id for e in entries]},
            )
        return [e.referral for e in entries]

    async def get_referral(self, referral_id: str, *, actor: Actor) -> Referral:
        referral = (await self.store.inbox.get(referral_id)).referral
        await self.store.audit.append(
            actor=actor.name, action="view", subject=referral_id, at=self.clock(), source=actor.source
        )
        return referral

    async def act_on_referral(
        self,
        referral_id: str,
        action: str | ReferralAction,
        *,
        actor: Actor,
        reason: str | None = None,
        outputs: Sequence[str] = (),
        at: datetime | None = None,
    ) -> Referral:
        """Move the referral's Task at its EHR, guarded by If-Match.

        On a version conflict (someone changed the Task meanwhile) the Task is read again and the
        action re-applied if the state machine still allows it; otherwise StateTransitionError.
        """
        act = parse_action(action) if isinstance(action, str) else action
        target = TARGET[act]
        when = at or self.clock()
        if act is ReferralAction.COMPLETE and not outputs:
            raise InputError("outputs", "completing a referral needs the Procedure or Encounter delivered")
        referral = (await self.store.inbox.get(referral_id)).referral
        check_transition(referral.status, target)  # fail fast on what we already know
        client = self.clients.get(referral.endpoint)
        if client is None:
            raise InputError("referral.endpoint", "the referral's endpoint is no longer configured")
        for _ in range(3):
            task = await client.read_raw(f"Task/{referral.task_id}")
            current = ReferralStatus(str(task.get("status")))
            if current is target and act is not ReferralAction.COMPLETE:
                break  # already there (our earlier attempt landed, or someone did the same)
            check_transition(current, target)
            updated = task_with_status(task, target, now=when, reason=reason, outputs=outputs)
            version = str((task.get("meta") or {}).get("versionId") or "")
            try:
                await client.update(updated, if_match=version or None)
                break
            except FhirRequestError as exc:
                if exc.status != 412:
                    raise
                continue  # changed under us: read again and re-apply if still valid
        else:
            raise StateTransitionError(
                referral.status.value, target.value, "the Task kept changing at the EHR"
            )
        fetched = await self.inbound.fetch_task(referral.endpoint, referral.task_id)
        now = self.clock()
        await self.store.audit.append(
            actor=actor.name,
            action=f"referral.{act.value}",
            subject=referral_id,
            at=now,
            source=actor.source,
            detail={
                "task": f"Task/{referral.task_id}",
                "status": target.value,
                "outputs": list(outputs),
                "refreshed": fetched,
            },
        )
        return (await self.store.inbox.get(referral_id)).referral

    # --- health ----------------------------------------------------------------------------------

    async def readiness(self) -> dict[str, tuple[bool, str | None]]:
        out: dict[str, tuple[bool, str | None]] = {}
        try:
            await self.store.outbox.counts()
            out["store"] = (True, None)
        except BridgeError as exc:
            out["store"] = (False, exc.code)
        for name, client in self.clients.items():
            ok = client.status().breaker.state != "open"
            out[name] = (ok, None if ok else "circuit open")
        return out


def outbox_client(name: str, endpoint: Any, *, base_dir: Path, lease_seconds: float) -> AsyncFhirClient:
    """The endpoint's client with an in-call retry budget well inside the outbox lease: longer
    outages are the outbox's to ride out (durably), not a coroutine's."""
    client = AsyncFhirClient.from_settings(name, endpoint, base_dir=base_dir)
    client.retry = RetryPolicy(max_seconds=min(endpoint.retry_max_seconds, lease_seconds / 4))
    return client


def default_inbound_settings(settings: Settings) -> InboundSettings:
    token = os.environ.get(settings.server.notification_token_env or "") or None
    url = f"{settings.server.public_url.rstrip('/')}/fhir/notify" if settings.server.public_url else None
    return InboundSettings(
        notify_url=url,
        notify_token=token,
        poll_seconds={n: ep.poll_interval_seconds for n, ep in settings.endpoints.items()},
        subscribe={n: ep.subscribe for n, ep in settings.endpoints.items()},
    )
