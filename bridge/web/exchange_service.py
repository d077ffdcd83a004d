"""The :class:`~bridge.web.service.BridgeService` the app uses: :class:`ExchangeService` underneath.

Translates between the HTTP layer's records (``Principal``, ``Submission``, ``InboxItem``) and the
exchange's (``Actor``, ``SubmissionStatus``, ``Referral``), and feeds the Prometheus metrics from the
outbox (counts per endpoint and state, retries) and from the EHR clients (request latency).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bridge.config import Settings
from bridge.domain import PeerEncounter, PeerNote, Referral, Role
from bridge.errors import ForbiddenError
from bridge.exchange.directory import Directory, InMemoryDirectory
from bridge.exchange.service import Actor, ExchangeService, SubmissionStatus
from bridge.observability import Metrics
from bridge.web.principal import Principal
from bridge.web.service import HeldNote, InboxItem, NoteCheck, Submission

log = logging.getLogger("bridge.web")

DIRECTORY_ENV = "BRIDGE_DIRECTORY"
DEFAULT_DIRECTORY = "directory.json"  # next to the config file


def load_directory(settings: Settings) -> Directory:
    """Participants, peers and consents: ``$BRIDGE_DIRECTORY`` or ``directory.json`` by the config."""
    path = os.environ.get(DIRECTORY_ENV)
    file = Path(path) if path else settings.path(DEFAULT_DIRECTORY)
    if file.exists():
        return InMemoryDirectory.from_file(file)
    log.warning("no participant directory file; every submission will name an unknown participant")
    return InMemoryDirectory()


PRACTITIONER = "practitioner:"


def _actor(p: Principal) -> Actor:
    # names the caller in the audit log and scopes idempotency keys (ids, never names); a peer is
    # named by practitioner id, so "who accepted this referral" can be read back from the audit log
    name = f"{PRACTITIONER}{p.practitioner_id}" if p.practitioner_id else f"{p.via}:{p.subject}"
    return Actor(name=name, role=p.role.value, organization=p.organization, practitioner_id=p.practitioner_id)


class ExchangeBridgeService:
    """Adapter from the HTTP layer to :class:`ExchangeService`."""

    def __init__(self, exchange: ExchangeService, settings: Settings) -> None:
        self.exchange = exchange
        self.organization = settings.organization.id
        self.track_assignees = settings.api_auth.peers_see_only_own

    def _submission(self, s: SubmissionStatus) -> Submission:
        return Submission(
            id=s.id,
            kind=s.kind,
            record_id=s.record_id,
            endpoint=s.endpoint,
            state=s.state,
            attempts=s.attempts,
            # one bridge serves one peer organization: everything in its outbox is that organization's
            organization=self.organization,
            fhir_ids=dict(s.fhir_ids),
            last_error=s.last_error,
            created_at=s.created_at,
            updated_at=s.updated_at,
            replayed=s.replayed,
            hold_reasons=list(s.hold_reasons),
            warnings=[] if s.state == "held" else list(s.warnings),
        )

    def _item(self, r: Referral, assignees: Mapping[str, str]) -> InboxItem:
        return InboxItem(referral=r, organization=self.organization, assignee=assignees.get(r.id))

    async def _assignees(self, referral_id: str | None = None) -> dict[str, str]:
        """Referral id -> the practitioner who accepted it (the latest accept in the audit log).

        Read only when ``api_auth.peers_see_only_own`` is set: the exchange keeps no assignee of its
        own, and the audit log is where "who accepted" is recorded anyway.
        """
        if not self.track_assignees:
            return {}
        entries = await self.exchange.store.audit.entries(
            subject=referral_id, action="referral.accept", limit=100_000
        )
        return {
            e.subject: e.actor.removeprefix(PRACTITIONER) for e in entries if e.actor.startswith(PRACTITIONER)
        }

    async def submit_encounter(
        self, encounter: PeerEncounter, *, actor: Principal, idempotency_key: str | None = None
    ) -> Submission:
        s = await self.exchange.submit_encounter(
            encounter, actor=_actor(actor), idempotency_key=idempotency_key
        )
        return self._submission(s)

    async def submit_note(
        self, note: PeerNote, *, actor: Principal, idempotency_key: str | None = None
    ) -> Submission:
        s = await self.exchange.submit_note(note, actor=_actor(actor), idempotency_key=idempotency_key)
        return self._submission(s)

    async def check_note(self, note: PeerNote, *, actor: Principal) -> NoteCheck:
        decision = await self.exchange.check_note(note, actor=_actor(actor))
        verdict = decision.verdict.value
        return NoteCheck(
            # hold (waits for a co-sign or an escalation) is reported as such: the note will be
            # accepted and held, and the peer should know before submitting
            verdict=verdict,
            violations=[v.to_dict() for v in decision.violations],
            rule_set=getattr(decision, "rule_set", None),
        )

    async def cosign_note(self, ref: str, *, actor: Principal, at: datetime) -> Submission:
        return self._submission(await self.exchange.cosign_note(ref, actor=_actor(actor), at=at))

    async def record_escalation(
        self, ref: str, escalation_ref: str, *, actor: Principal, at: datetime
    ) -> Submission:
        s = await self.exchange.record_escalation(ref, escalation_ref, actor=_actor(actor), at=at)
        return self._submission(s)

    async def record_refused(self, action: str, ref: str, *, actor: Principal, error: ForbiddenError) -> None:
        await self.exchange.record_refused(action, ref, actor=_actor(actor), error=error)

    async def list_held(self, *, actor: Principal, mine: bool = False) -> list[HeldNote]:
        held = await self.exchange.list_held(actor=_actor(actor), mine=mine)
        return [
            HeldNote(h.submission_id, h.note, self.organization, list(h.hold_reasons), h.held_since)
            for h in held
        ]

    async def get_submission(self, submission_id: str) -> Submission:
        return self._submission(await self.exchange.submission(submission_id))

    async def list_outbox(self, *, limit: int) -> list[Submission]:
        return [self._submission(s) for s in await self.exchange.list_submissions(limit=limit)]

    async def list_referrals(self, *, organization: str) -> list[InboxItem]:
        if organization != self.organization:
            return []
        actor = Actor(name="web", role="peer-specialist", organization=organization)
        referrals = await self.exchange.list_referrals(actor=actor, limit=500)
        assignees = await self._assignees()
        return [self._item(r, assignees) for r in referrals]

    async def get_referral(
        self,
        referral_id: str,
        *,
        actor: Principal | None = None,
        allowed: Callable[[InboxItem], None] | None = None,
    ) -> InboxItem:
        if allowed is not None:
            # decide on the stored copy first: only a permitted look goes to the audit log as a view
            stored = (await self.exchange.store.inbox.get(referral_id)).referral
            allowed(self._item(stored, await self._assignees(referral_id)))
        who = _actor(actor) if actor is not None else Actor("web", "peer-specialist", self.organization)
        referral = await self.exchange.get_referral(referral_id, actor=who)  # audited as a view
        return self._item(referral, await self._assignees(referral_id))

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
        r = await self.exchange.act_on_referral(
            referral_id, action, actor=_actor(actor), reason=reason, outputs=outputs, at=at
        )
        return self._item(r, await self._assignees(referral_id))

    async def handle_notification(self, body: Mapping[str, Any] | None) -> None:
        await self.exchange.handle_notification(body)

    async def readiness(self) -> dict[str, tuple[bool, str | None]]:
        out = await self.exchange.readiness()
        return {k if k == "store" else f"endpoint:{k}": v for k, v in out.items()}

    def permits(self, role: Role, verb: str, record: str) -> Any:
        return self.exchange.policy.permits(role, verb, record)

    async def outbox_counts(self) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        counts = await self.exchange.outbox_counts()
        flat = {(ep, state): n for ep, states in counts.items() for state, n in states.items()}
        retries = {ep: st.retried for ep, st in self.exchange.worker.stats().items()}
        return flat, retries


def _observe_latency(exchange: ExchangeService, metrics: Metrics) -> None:
    """Time every request each EHR client makes (httpx event hooks on its long-lived client)."""
    for name, client in exchange.clients.items():
        http = getattr(client, "_http", None)
        if not isinstance(http, httpx.AsyncClient):
            continue

        async def started(request: httpx.Request) -> None:
            request.extensions["bridge_started"] = time.perf_counter()

        async def finished(response: httpx.Response, endpoint: str = name) -> None:
            began = response.request.extensions.get("bridge_started")
            if isinstance(began, float):
                outcome = "ok" if response.status_code < 400 else f"{response.status_code // 100}xx"
                metrics.observe_delivery(endpoint, time.perf_counter() - began, outcome)

        http.event_hooks["request"].append(started)
        http.event_hooks["response"].append(finished)


@asynccontextmanager
async def open_exchange_service(
    settings: Settings,
    metrics: Metrics,
    *,
    directory: Directory | None = None,
    start_workers: bool = True,
) -> AsyncIterator[ExchangeBridgeService]:
    """Open the exchange (store, clients, policy), start its workers, and close it all afterwards."""
    exchange = await ExchangeService.open(settings, directory=directory or load_directory(settings))
    try:
        _observe_latency(exchange, metrics)
        if start_workers:
            await exchange.start()
        yield ExchangeBridgeService(exchange, settings)
    finally:
        # stops the workers first: in-flight deliveries finish or their leases lapse for another
        await exchange.close()
