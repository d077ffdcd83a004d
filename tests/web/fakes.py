"""An in-memory BridgeService for tests of the HTTP layer alone (auth, errors, OpenAPI, idempotency).

Behaviour of the real service is tested against the sandbox EHR elsewhere; this only records calls
and answers like the real one would, so the web layer can be tested without an EHR.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.web.service import HeldNote, InboxItem, NoteCheck, Submission

from bridge.config import Settings
from bridge.domain import PeerEncounter, PeerNote, Referral, ReferralStatus, Role
from bridge.errors import (
    ForbiddenError,
    NotFoundInStoreError,
    NotHeldError,
    ScopeViolationError,
    StateTransitionError,
)
from bridge.observability import Metrics
from bridge.roles import Policy, load_policy
from bridge.web.principal import Principal

BLOCKED_WORD = "diagnosed with"
HELD_WORD = "thinking about suicide"  # held until an escalation is recorded
HOLD = {"rule": "content.risk-of-harm", "severity": "hold", "message": "escalate first", "evidence": None}
RULES = Path(__file__).resolve().parents[2] / "config" / "rules"


@functools.cache
def _policy() -> Policy:
    return load_policy(RULES, "TX")


_NEXT = {
    "accept": ({ReferralStatus.REQUESTED}, ReferralStatus.ACCEPTED),
    "decline": ({ReferralStatus.REQUESTED}, ReferralStatus.REJECTED),
    "start": ({ReferralStatus.ACCEPTED}, ReferralStatus.IN_PROGRESS),
    "complete": ({ReferralStatus.IN_PROGRESS}, ReferralStatus.COMPLETED),
}


@dataclass
class FakeService:
    organization: str
    submissions: dict[str, Submission] = field(default_factory=dict)
    referrals: dict[str, InboxItem] = field(default_factory=dict)
    notifications: list[Mapping[str, Any] | None] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    ready: bool = True

    held: dict[str, PeerNote] = field(default_factory=dict)
    refused: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # audited refusals

    def _queue(self, kind: str, record_id: str, actor: Principal, *, held: bool = False) -> Submission:
        sid = f"sub-{len(self.submissions) + 1}"
        state, reasons = ("held", [HOLD]) if held else ("queued", [])
        s = Submission(sid, kind, record_id, "clinic", state, 0, actor.organization, hold_reasons=reasons)
        self.submissions[sid] = s
        return s

    def _check(self, note: PeerNote) -> NoteCheck:
        if BLOCKED_WORD in note.text.lower():
            return NoteCheck(
                "block",
                [
                    {
                        "rule": "no-diagnosis",
                        "severity": "block",
                        "message": "diagnostic wording",
                        "evidence": [BLOCKED_WORD],
                    }
                ],
            )
        return NoteCheck("allow", [])

    async def submit_encounter(
        self, encounter: PeerEncounter, *, actor: Principal, idempotency_key: str | None = None
    ) -> Submission:
        self.calls.append(f"submit_encounter:{encounter.id}")
        return self._queue("encounter", encounter.id, actor)

    async def submit_note(
        self, note: PeerNote, *, actor: Principal, idempotency_key: str | None = None
    ) -> Submission:
        self.calls.append(f"submit_note:{note.id}")
        check = self._check(note)
        if check.verdict == "block":
            raise ScopeViolationError("note is out of peer scope", check.violations)
        s = self._queue("note", note.id, actor, held=HELD_WORD in note.text.lower())
        if s.state == "held":
            self.held[s.id] = note
        return s

    def _release(self, ref: str) -> Submission:
        s = self.submissions.get(ref)
        if s is None:
            raise NotFoundInStoreError(f"no note or submission {ref!r}")
        if s.state != "held":
            raise NotHeldError(f"submission {ref} is {s.state}, not held")
        self.held.pop(ref, None)
        done = replace(s, state="queued", hold_reasons=[])
        self.submissions[ref] = done
        return done

    async def cosign_note(self, ref: str, *, actor: Principal, at: datetime) -> Submission:
        self.calls.append(f"cosign_note:{ref}")
        return self._release(ref)

    async def record_escalation(
        self, ref: str, escalation_ref: str, *, actor: Principal, at: datetime
    ) -> Submission:
        self.calls.append(f"record_escalation:{ref}:{escalation_ref}")
        return self._release(ref)

    async def record_refused(self, action: str, ref: str, *, actor: Principal, error: ForbiddenError) -> None:
        self.refused.append((action, ref, actor.subject, error.rule))

    async def list_held(self, *, actor: Principal, mine: bool = False) -> list[HeldNote]:
        return [
            HeldNote(
                sid,
                note,
                self.submissions[sid].organization,
                [HOLD],
                datetime.fromisoformat("2026-03-02T15:00:00-06:00"),
            )
            for sid, note in self.held.items()
            if not mine or note.author_id == actor.practitioner_id
        ]

    async def check_note(self, note: PeerNote, *, actor: Principal) -> NoteCheck:
        self.calls.append(f"check_note:{note.id}")
        return self._check(note)

    async def get_submission(self, submission_id: str) -> Submission:
        try:
            return self.submissions[submission_id]
        except KeyError:
            raise NotFoundInStoreError(f"no submission {submission_id!r}") from None

    async def list_outbox(self, *, limit: int) -> list[Submission]:
        return list(self.submissions.values())[:limit]

    async def list_referrals(self, *, organization: str) -> list[InboxItem]:
        return [i for i in self.referrals.values() if i.organization == organization]

    async def get_referral(
        self,
        referral_id: str,
        *,
        actor: Principal | None = None,
        allowed: Callable[[InboxItem], None] | None = None,
    ) -> InboxItem:
        try:
            item = self.referrals[referral_id]
        except KeyError:
            raise NotFoundInStoreError(f"no referral {referral_id!r}") from None
        if allowed is not None:
            allowed(item)
        return item

    async def act_on_referral(
        self,
        referral_id: str,
        action: str,
        *,
        actor: Principal,
        reason: str | None,
        outputs: list[str],
        at: datetime,
    ) -> InboxItem:
        self.calls.append(f"{action}:{referral_id}")
        item = await self.get_referral(referral_id)
        allowed, to = _NEXT[action]
        if item.referral.status not in allowed:
            raise StateTransitionError(item.referral.status.value, to.value)
        if action == "decline" and not reason:
            from bridge.errors import InputError

            raise InputError("reason", "required when declining")
        ref = item.referral.model_copy(update={"status": to, "status_reason": reason})
        new = replace(item, referral=ref, assignee=item.assignee or actor.practitioner_id)
        self.referrals[referral_id] = new
        return new

    async def handle_notification(self, body: Mapping[str, Any] | None) -> None:
        self.notifications.append(body)

    async def readiness(self) -> dict[str, tuple[bool, str | None]]:
        return {"store": (self.ready, None if self.ready else "down"), "endpoint:clinic": (True, "closed")}

    def permits(self, role: Role, verb: str, record: str) -> Any:
        # the real rule files: the web layer's access decisions go through the policy engine
        return _policy().permits(role, verb, record)

    async def outbox_counts(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        return {("clinic", "queued"): len(self.submissions)}, {"clinic": 0}

    def add_referral(
        self,
        rid: str,
        *,
        organization: str | None = None,
        assignee: str | None = None,
        status: ReferralStatus = ReferralStatus.REQUESTED,
    ) -> None:
        ref = Referral(
            id=rid,
            endpoint="clinic",
            task_id=f"task-{rid}",
            service_request_id=f"sr-{rid}",
            status=status,
            reason="Peer support after ED visit",
        )
        self.referrals[rid] = InboxItem(ref, organization or self.organization, assignee)


def factory(service: FakeService) -> Any:
    @asynccontextmanager
    async def open_service(settings: Settings, metrics: Metrics) -> AsyncIterator[FakeService]:
        yield service

    return open_service
