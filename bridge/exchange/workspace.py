"""The peer workspace's reads: what the pages need to carry a working day without typing an id.

A peer's sessions and notes (newest first, with the state of each and what to do next), their
caseload (the referrals they took on, with the last contact and the next appointment), the
participant a referral is about (the referral's patient, matched by the EHR's patient identifier
against the directory), the usual length of the peer's sessions, and the delivered sessions and
notes a referral can be completed with. Read models only: every change goes through the
submissions, supervision and referrals jobs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bridge.domain import Participant, PeerEncounter, PeerNote, Referral, ReferralAppointment, ReferralStatus
from bridge.errors import BridgeError
from bridge.exchange.context import ExchangeContext
from bridge.exchange.payload import OutboxPayload
from bridge.exchange.views import RETURNED, Actor, Submission
from bridge.store import OutboxItem, OutboxState

OPEN = (ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD)
CLOSED = tuple(s for s in ReferralStatus if s not in OPEN)
TAKEN = (ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD)
DEFAULT_SESSION_MINUTES = 45
RECENT = 300  # how many of the actor's latest sessions / notes the pages look through


@dataclass(frozen=True)
class SessionItem:
    """A session the peer logged, its submission, and the note written for it (if any)."""

    encounter: PeerEncounter
    submission: Submission
    note_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoteItem:
    """One of the peer's notes: its state in words (held, returned, sending, sent, failed)."""

    note: PeerNote
    submission: Submission
    state: str
    hold_reasons: list[dict[str, object]] = field(default_factory=list)
    returned: dict[str, object] | None = None
    risk: bool = False  # held until an escalation is recorded


@dataclass(frozen=True)
class CaseloadEntry:
    referral: Referral
    last_contact: datetime | None
    next_appointment: ReferralAppointment | None
    sessions: int


def note_state(item: OutboxItem) -> str:
    """A note's state in the peer's words."""
    if item.state is OutboxState.HELD:
        return "returned" if any(v.get("severity") == RETURNED for v in item.hold or []) else "held"
    return {
        OutboxState.QUEUED: "sending",
        OutboxState.SENDING: "sending",
        OutboxState.DELIVERED: "sent",
        OutboxState.DEAD: "failed",
    }[item.state]


class Workspace:
    def __init__(self, ctx: ExchangeContext) -> None:
        self.ctx = ctx
        self._participants: dict[str, str] = {}  # referral id -> participant id, once matched

    async def _items(self, kind: str, actor: Actor) -> list[OutboxItem]:
        # what the actor submitted themselves (the pages and their own API calls); work a service
        # account submitted for them is not listed here
        return await self.ctx.store.outbox.latest(
            kind=kind,
            organization=actor.organization,
            include_unowned=actor.organization == self.ctx.organization,
            submitted_by=actor.name,
            limit=RECENT,
        )

    async def sessions(self, *, actor: Actor, referral_id: str | None = None) -> list[SessionItem]:
        """The actor's sessions, newest first (one per session id: its latest copy)."""
        if actor.practitioner_id is None:
            return []
        notes: dict[str, list[str]] = {}
        for item in await self._items("note", actor):
            note = _read(item).note
            if note is not None and note.encounter_id:
                notes.setdefault(note.encounter_id, []).append(note.id)
        out: list[SessionItem] = []
        seen: set[str] = set()
        for item in await self._items("encounter", actor):
            enc = _read(item).encounter
            if enc.peer_id != actor.practitioner_id or enc.id in seen:
                continue
            if referral_id is not None and enc.referral_id != referral_id:
                continue
            seen.add(enc.id)
            ids = tuple(dict.fromkeys(notes.get(enc.id, [])))
            out.append(SessionItem(enc, self.ctx.submission(item), ids))
        return out

    async def session(self, encounter_id: str, *, actor: Actor) -> SessionItem | None:
        return next((s for s in await self.sessions(actor=actor) if s.encounter.id == encounter_id), None)

    async def notes(self, *, actor: Actor) -> list[NoteItem]:
        """The actor's notes, newest first (one per note id: its latest copy)."""
        if actor.practitioner_id is None:
            return []
        out: list[NoteItem] = []
        seen: set[str] = set()
        for item in await self._items("note", actor):
            note = _read(item).note
            if note is None or note.author_id != actor.practitioner_id or note.id in seen:
                continue
            seen.add(note.id)
            reasons = [dict(v) for v in item.hold or [] if v.get("severity") != RETURNED]
            returned = next((dict(v) for v in item.hold or [] if v.get("severity") == RETURNED), None)
            risk = any(
                v.get("severity") == "hold" and self.ctx.policy.satisfied_by(str(v["rule"])) == "escalation"
                for v in reasons
            )
            out.append(NoteItem(note, self.ctx.submission(item), note_state(item), reasons, returned, risk))
        return out

    async def note(self, submission_id: str, *, actor: Actor) -> NoteItem | None:
        return next((n for n in await self.notes(actor=actor) if n.submission.id == submission_id), None)

    async def usual_minutes(self, *, actor: Actor) -> int:
        """The median length of the actor's recent sessions (45 minutes before there are any)."""
        lengths = [s.encounter.minutes for s in (await self.sessions(actor=actor))[:20]]
        return int(statistics.median(lengths)) if lengths else DEFAULT_SESSION_MINUTES

    async def caseload(
        self, referrals: Sequence[Referral], *, actor: Actor, now: datetime
    ) -> list[CaseloadEntry]:
        """The referrals ``actor`` took on (``referrals``: those the caller may see), with the last
        session held for each and the next appointment; soonest appointment first."""
        sessions = await self.sessions(actor=actor)
        out = []
        for r in referrals:
            mine = [s.encounter for s in sessions if s.encounter.referral_id == r.id]
            upcoming = sorted((a for a in r.appointments if a.start >= now), key=lambda a: a.start)
            out.append(
                CaseloadEntry(
                    r,
                    max((e.start for e in mine), default=None),
                    upcoming[0] if upcoming else None,
                    len(mine),
                )
            )
        far = datetime.max.replace(tzinfo=now.tzinfo)
        return sorted(
            out, key=lambda c: (c.next_appointment.start if c.next_appointment else far, c.referral.id)
        )

    async def met_without_referral(self, *, actor: Actor) -> list[tuple[str, datetime]]:
        """The participants the actor held sessions with outside any referral, and when last:
        a session for them is logged from the person (their row in the caseload)."""
        last: dict[str, datetime] = {}
        for s in await self.sessions(actor=actor):
            if s.encounter.referral_id is None:
                pid, start = s.encounter.participant_id, s.encounter.start
                last[pid] = max(last.get(pid, start), start)
        return sorted(last.items(), key=lambda kv: kv[1], reverse=True)

    async def participant_for(self, referral: Referral) -> Participant | None:
        """The directory's participant for a referral's patient: the Patient at the referral's
        EHR (read by the bridge, never shown) names its identifiers; the one the directory knows
        for that endpoint is the match. None when the patient is not (yet) a known participant."""
        known = self._participants.get(referral.id)
        if known is not None:
            return await self.ctx.directory.participant(known)
        client = self.ctx.clients.get(referral.endpoint)
        if client is None or not referral.patient_id:
            return None
        try:
            patient = await client.read_raw(f"Patient/{referral.patient_id}")
        except BridgeError:
            return None
        for ident in patient.get("identifier") or []:
            if not isinstance(ident, dict) or not ident.get("system") or not ident.get("value"):
                continue
            found = await self.ctx.directory.find_participant(
                referral.endpoint, str(ident["system"]), str(ident["value"])
            )
            if found is not None:
                self._participants[referral.id] = found.id
                return found
        return None

    async def delivered_for(self, referral_id: str, *, actor: Actor) -> list[tuple[str, str]]:
        """What a referral can be completed with: the delivered sessions logged for it (their
        Encounter and Procedure) and the notes sent for those sessions, as (reference, label)."""
        sessions = await self.sessions(actor=actor, referral_id=referral_id)
        wanted = {s.encounter.id: s for s in sessions}
        out: list[tuple[str, str]] = []
        for s in sessions:
            if s.submission.state != "delivered":
                continue
            when = s.encounter.start.strftime("%d %b %Y")
            for kind in ("Procedure", "Encounter"):
                ref = s.submission.fhir_ids.get(kind)
                if ref:
                    label = "service delivered" if kind == "Procedure" else "session"
                    out.append((ref, f"{label.capitalize()} on {when} ({s.encounter.minutes} min)"))
        for n in await self.notes(actor=actor):
            if n.note.encounter_id in wanted and n.state == "sent":
                ref = n.submission.fhir_ids.get("DocumentReference")
                if ref:
                    out.append((ref, f"Note written {n.note.written_at.strftime('%d %b %Y')}"))
        return out


def _read(item: OutboxItem) -> OutboxPayload:
    return OutboxPayload.read(item.payload)
