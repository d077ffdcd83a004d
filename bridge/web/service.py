"""What the HTTP layer needs from the application services (``bridge.exchange``), as a Protocol.

Handlers only parse, authorize and answer; the work happens behind this interface. The concrete
implementation (:mod:`bridge.web.exchange_service`) wires it to the exchange/store functions, and the
app opens and closes it in a ``cleanup_ctx``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bridge.domain import PeerEncounter, PeerNote, Referral, Role
from bridge.errors import ForbiddenError
from bridge.web.principal import Principal


@dataclass(frozen=True, slots=True)
class Submission:
    """A queued piece of outbound work, as the API reports it."""

    id: str
    kind: str
    record_id: str
    endpoint: str
    state: str
    attempts: int
    organization: str
    fhir_ids: Mapping[str, str] = field(default_factory=dict)
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    replayed: bool = False  # answered from an earlier request with the same Idempotency-Key
    hold_reasons: list[dict[str, Any]] = field(default_factory=list)  # state "held": what it waits for
    warnings: list[dict[str, Any]] = field(default_factory=list)  # accepted with advice (policy "warn")


@dataclass(frozen=True, slots=True)
class HeldNote:
    """A held note as its co-signer sees it (the text is PHI: shown to them, never logged)."""

    submission_id: str
    note: PeerNote
    organization: str
    hold_reasons: list[dict[str, Any]]
    held_since: datetime


@dataclass(frozen=True, slots=True)
class NoteCheck:
    verdict: str  # allow | warn | hold | block
    violations: list[dict[str, Any]]
    rule_set: str | None = None


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A referral in the peer view plus who (if anyone) took it on."""

    referral: Referral
    organization: str
    assignee: str | None = None


class BridgeService(Protocol):
    """Application services the API calls. Errors are :mod:`bridge.errors` types."""

    async def submit_encounter(
        self, encounter: PeerEncounter, *, actor: Principal, idempotency_key: str | None = None
    ) -> Submission: ...

    async def submit_note(
        self, note: PeerNote, *, actor: Principal, idempotency_key: str | None = None
    ) -> Submission: ...

    async def check_note(self, note: PeerNote, *, actor: Principal) -> NoteCheck: ...

    async def cosign_note(self, ref: str, *, actor: Principal, at: datetime) -> Submission:
        """Co-sign the held note ``ref`` (tracking id or note id): queued if nothing else holds it."""
        ...

    async def record_escalation(
        self, ref: str, escalation_ref: str, *, actor: Principal, at: datetime
    ) -> Submission: ...

    async def record_refused(self, action: str, ref: str, *, actor: Principal, error: ForbiddenError) -> None:
        """Audit a refused co-sign or escalation (``action``: ``note.cosign`` | ``note.escalation``)
        on the submission ``ref`` names: who, which submission, the deciding rule."""
        ...

    async def list_held(self, *, actor: Principal, mine: bool = False) -> list[HeldNote]:
        """The held notes ``actor`` may co-sign, or with ``mine`` the ones ``actor`` wrote (audited
        as a view)."""
        ...

    async def get_submission(self, submission_id: str) -> Submission: ...

    async def list_outbox(self, *, limit: int) -> list[Submission]: ...

    async def list_referrals(self, *, organization: str) -> list[InboxItem]: ...

    async def get_referral(
        self,
        referral_id: str,
        *,
        actor: Principal | None = None,
        allowed: Callable[[InboxItem], None] | None = None,
    ) -> InboxItem:
        """The referral, audited as a view by ``actor``. ``allowed`` runs first and raises to refuse,
        so a refused look is not recorded as a view."""
        ...

    async def act_on_referral(
        self,
        referral_id: str,
        action: str,
        *,
        actor: Principal,
        reason: str | None,
        outputs: list[str],
        at: datetime,
    ) -> InboxItem: ...

    async def handle_notification(self, body: Mapping[str, Any] | None) -> None: ...

    async def readiness(self) -> dict[str, tuple[bool, str | None]]: ...

    async def outbox_counts(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]: ...

    def permits(self, role: Role, verb: str, record: str) -> Any:
        """The policy engine's grant check: an object with ``allowed``, ``rule`` and ``reason``."""
        ...
