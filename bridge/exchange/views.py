"""The exchange's records for its callers: who is calling (:class:`Actor`) and the read models the
web layer and the CLI serialise as they are (:class:`Submission`, :class:`HeldNote`,
:class:`InboxItem`). Each is built once, here, from the store's rows: the edge chooses which fields
to show, it never rebuilds one of these from another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.domain import PeerNote, Referral
from bridge.store import InboxEntry, OutboxItem

Violations = list[dict[str, Any]]

# the severity of the marker a supervisor's return leaves among a held note's reasons
RETURNED = "returned"


@dataclass(frozen=True)
class Actor:
    """Who is calling and from where (goes to the audit log). ``name`` scopes idempotency keys."""

    name: str
    role: str
    organization: str
    source: str | None = None
    practitioner_id: str | None = None  # the directory's PeerWorker id, when the caller is one


@dataclass(frozen=True)
class Submission:
    """One queued (or held) piece of outbound work: what ``POST /encounters|/notes`` answers and
    ``GET /submissions/{id}`` shows. ``warnings`` (severity ``warn``, whatever the state) are the
    full violations in the answer to the submission itself, the stored ones (rule, severity,
    message) on a later read; what holds it is ``hold_reasons``."""

    id: str
    kind: str
    record_id: str
    endpoint: str
    organization: str  # the organization it belongs to: per-item access checks compare with this
    state: str
    attempts: int
    fhir_ids: dict[str, str]
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    warnings: Violations = field(default_factory=list)
    hold_reasons: Violations = field(default_factory=list)  # state "held": what it waits for
    replayed: bool = False  # answered from an earlier request with the same Idempotency-Key
    # delivered: each resource written ({type, id, status}) and each left out ({type, reason})
    written: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        item: OutboxItem,
        *,
        unowned_by: str,
        warnings: Sequence[Mapping[str, Any]] = (),
        replayed: bool = False,
    ) -> Submission:
        """``unowned_by``: the organization of rows written before owners were recorded (a bridge
        then served exactly one, its own)."""
        ids: dict[str, str] = {}
        for ref in (item.result or {}).get("refs", []):
            ids.setdefault(str(ref).split("/")[0], str(ref))
        return cls(
            id=item.id,
            kind=item.kind,
            record_id=item.item_key,
            endpoint=item.endpoint,
            organization=item.organization or unowned_by,
            state=item.state.value,
            attempts=item.attempts,
            fhir_ids=ids,
            last_error=item.last_error,
            created_at=item.created_at,
            updated_at=item.updated_at,
            delivered_at=item.delivered_at,
            warnings=[dict(w) for w in (warnings or item.warnings or []) if w.get("severity") == "warn"],
            hold_reasons=[dict(v) for v in item.hold or []],
            replayed=replayed,
            written=[dict(w) for w in (item.result or {}).get("written", [])],
            skipped=[dict(k) for k in (item.result or {}).get("skipped", [])],
        )


@dataclass(frozen=True)
class HeldNote:
    """A held note as its co-signer or author sees it (the note carries PHI: show, never log)."""

    submission_id: str
    note: PeerNote
    endpoint: str
    organization: str
    hold_reasons: Violations
    held_since: datetime
    # what resolves its holds, as the rules say ("cosign", "escalation"): the forms the page offers
    resolved_by: frozenset[str] = frozenset()

    @property
    def risk(self) -> bool:
        """Held for a risk of harm: an escalation resolves it (the queue shows these first)."""
        return "escalation" in self.resolved_by

    @property
    def returned(self) -> dict[str, Any] | None:
        """The supervisor's return to the author (comment, by, at), while the author revises."""
        return next((dict(v) for v in self.hold_reasons if v.get("severity") == RETURNED), None)

    @property
    def waiting_for(self) -> Violations:
        """The policy's reasons that still hold it (the return marker left out)."""
        return [v for v in self.hold_reasons if v.get("severity") != RETURNED]


@dataclass(frozen=True)
class InboxItem:
    """A referral in the peer view, the organization it was sent to, and who (if anyone) took it on."""

    referral: Referral
    organization: str
    assignee: str | None = None

    @classmethod
    def of(cls, entry: InboxEntry, *, organization: str) -> InboxItem:
        return cls(entry.referral, organization, entry.assignee)
