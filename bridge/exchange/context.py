"""What every job of the exchange shares: settings, store, directory, policy, clients, clock, and
the few look-ups more than one job makes (a referral named by a record, the endpoint a record goes
to, the session a note documents, a submission's read model, an audit entry for an actor).
Built once by :mod:`bridge.exchange.wiring`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.clients import AsyncFhirClient
from bridge.config import Settings
from bridge.domain import Participant, PeerEncounter, PeerNote, Referral
from bridge.errors import ForbiddenError, InputError, NotFoundInStoreError
from bridge.exchange.directory import Directory
from bridge.exchange.events import NO_EVENTS, ExchangeEvents
from bridge.exchange.payload import OutboxPayload
from bridge.exchange.routing import route
from bridge.exchange.views import Actor, Submission
from bridge.roles.policy import Policy
from bridge.store import OutboxItem, Store

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ExchangeContext:
    settings: Settings
    store: Store
    directory: Directory
    policy: Policy
    clients: Mapping[str, AsyncFhirClient]
    clock: Clock
    owner: str  # this instance's name: the audit log's "bridge:<owner>", lease owner
    events: ExchangeEvents = NO_EVENTS  # who watches (metrics): ExchangeService.observe

    @property
    def organization(self) -> str:
        """The peer organization this bridge is configured for."""
        return self.settings.organization.id

    def require_own_organization(self, actor: Actor) -> None:
        if actor.organization != self.organization:
            raise ForbiddenError("callers act only within their own organization", rule="same-organization")

    def submission(
        self, item: OutboxItem, *, warnings: Sequence[Mapping[str, Any]] = (), replayed: bool = False
    ) -> Submission:
        return Submission.of(item, unowned_by=self.organization, warnings=warnings, replayed=replayed)

    async def referral(self, referral_id: str | None) -> Referral | None:
        """The inbox referral a record names (``referral_id``), if it names one."""
        if referral_id is None:
            return None
        try:
            return (await self.store.inbox.get(referral_id)).referral
        except NotFoundInStoreError:
            raise InputError("referral_id", "no such referral in the inbox") from None

    def route(self, explicit: str | None, referral: Referral | None, participant: Participant) -> str:
        return route(
            explicit=explicit,
            referral_endpoint=referral.endpoint if referral is not None else None,
            home_endpoint=participant.home_endpoint,
            default_endpoint=self.settings.default_endpoint,
            configured=self.clients.keys(),
        )

    async def encounter_of(self, note: PeerNote) -> PeerEncounter:
        """The session ``note`` documents, as it was submitted (the latest copy)."""
        items = await self.store.outbox.find(kind="encounter", item_key=str(note.encounter_id))
        if not items:
            raise InputError("encounter_id", "unknown session: submit the encounter first")
        encounter = OutboxPayload.read(items[-1].payload).encounter
        # the mappers refuse these at delivery; refusing them here keeps them out of the dead letters
        if note.participant_id != encounter.participant_id:
            raise InputError("participant_id", "not the participant of the session this note documents")
        if note.author_id != encounter.peer_id:
            raise InputError("author_id", "not the peer who held the session this note documents")
        return encounter

    async def audit(
        self,
        actor: Actor,
        action: str,
        subject: str,
        *,
        outcome: str = "ok",
        detail: Mapping[str, Any] | None = None,
        at: datetime | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        await self.store.audit.append(
            actor=actor.name,
            action=action,
            subject=subject,
            at=at or self.clock(),
            outcome=outcome,
            source=actor.source,
            detail=detail,
            conn=conn,
        )
