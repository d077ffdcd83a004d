"""The exchange put together: one :class:`ExchangeService` per process, its jobs as attributes.

    svc = await ExchangeService.open(settings, directory=directory)   # store (migrated), clients, policy
    svc.submissions   # submit_encounter, submit_note, check_note, get, list        (submissions.py)
    svc.supervision   # cosign_note, record_escalation, record_refused, list_held    (supervision.py)
    svc.referrals     # list, get, act (accept | decline | start | complete ...)      (referrals.py)
    svc.workspace     # the pages' reads: sessions, notes, caseload, participant_for   (workspace.py)
    svc.inbound       # notifications, subscriptions, polling                         (inbound.py)
    svc.worker        # outbound delivery of what svc.delivery.prepare maps           (outbound.py)
    svc.operations    # per-endpoint state and dead-letter retry for the ops page     (operations.py)
    await svc.start(); await svc.close()

Nothing else builds these: the web app, ``bridge.exchange.run``, the demo, benches and tests all
come through :meth:`ExchangeService.open` (or the constructor, given a store and clients).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bridge.clients import AsyncFhirClient
from bridge.config import Settings
from bridge.domain import Role
from bridge.errors import BridgeError
from bridge.exchange.alerts import RiskAlerts
from bridge.exchange.context import Clock, ExchangeContext, utc_now
from bridge.exchange.delivery import Delivery
from bridge.exchange.directory import Directory
from bridge.exchange.events import ExchangeEvents
from bridge.exchange.inbound import InboundSettings, InboundSync
from bridge.exchange.intake import Intake
from bridge.exchange.operations import Operations
from bridge.exchange.outbound import OutboundSettings, OutboundWorker
from bridge.exchange.referrals import Referrals
from bridge.exchange.submissions import Submissions
from bridge.exchange.supervision import Supervision
from bridge.exchange.workspace import Workspace
from bridge.roles.permissions import Permission
from bridge.roles.policy import Policy
from bridge.store import OutboxState, Store, open_store


def instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class OutboxCounts:
    """For ``/metrics``: items per (endpoint, state) and retries per endpoint since start."""

    items: dict[tuple[str, str], int]
    retried: dict[str, int]
    oldest_pending: dict[str, datetime] = field(default_factory=dict)  # per endpoint: backlog age


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
        self.ctx = ExchangeContext(
            settings, store, directory, policy, dict(clients), clock, owner or instance_name()
        )
        self.delivery = Delivery(self.ctx)
        self.worker = OutboundWorker(
            store,
            self.ctx.clients,
            self.delivery.prepare,
            owner=self.owner,
            clock=clock,
            settings=outbound or outbound_settings(settings),
            concurrency=concurrency,
        )
        self.intake = Intake(self.ctx)
        self.inbound = InboundSync(
            store,
            self.ctx.clients,
            self.intake.reduce_referral,
            owner_for=self.intake.organization_ref,
            clock=clock,
            settings=inbound or default_inbound_settings(settings),
            actor=f"bridge:{self.owner}",
            wanted=self.intake.supporting_references,
        )
        self.alerts = RiskAlerts(self.ctx)
        self.submissions = Submissions(
            self.ctx,
            wake=self.worker.wake,
            on_held=lambda sub, actor: self.alerts.note_held(sub, actor=actor),
        )
        self.supervision = Supervision(self.ctx, self.submissions, wake=self.worker.wake)
        self.referrals = Referrals(self.ctx, self.inbound)
        self.worker.on_delivered = self.referrals.record_delivery
        self.operations = Operations(self.ctx, self.inbound, wake=self.worker.wake)
        self.workspace = Workspace(self.ctx)  # the pages' reads: sessions, notes, caseload

    # what every job shares, held once by the context
    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def clients(self) -> Mapping[str, AsyncFhirClient]:
        return self.ctx.clients

    @property
    def directory(self) -> Directory:
        return self.ctx.directory

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def owner(self) -> str:
        return self.ctx.owner

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

            policy = load_policy(settings.rules_dir(), settings.rules.jurisdiction)
        store = store or await open_store(settings.store.url, schema=store_schema)
        # the in-call retry budget stays well inside the outbox lease: longer outages are the
        # outbox's to ride out (durably), not a coroutine's
        budget = settings.store.lease_seconds / 4
        clients = {
            name: AsyncFhirClient.from_settings(
                name, ep, base_dir=Path(settings.base_dir), retry_max_seconds=budget
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

    def observe(self, events: ExchangeEvents) -> None:
        """Tell ``events`` (the app's metrics) of deliveries, referrals and verdicts from now on."""
        self.ctx.events = events
        self.worker.events = events
        self.inbound.events = events

    # --- health and access -----------------------------------------------------------------------

    async def readiness(self) -> dict[str, tuple[bool, str | None]]:
        """``store`` and ``endpoint:<name>`` (its circuit breaker): (ok, reason)."""
        out: dict[str, tuple[bool, str | None]] = {}
        try:
            await self.store.outbox.counts()
            await self.store.check_writable()  # read-only, every submission would answer 503
            out["store"] = (True, None)
        except BridgeError as exc:
            out["store"] = (False, exc.code)
        for name, client in self.clients.items():
            breaker = client.status().breaker
            # not ready until the endpoint answers again: a half-open breaker (trial pending) after
            # a run of failures or time-outs is still a failing EHR, not a recovered one
            failing = breaker.state == "open" or breaker.consecutive_failures >= client.breaker.failures
            reason = (
                "circuit open"
                if breaker.state == "open"
                else f"circuit {breaker.state} after {breaker.consecutive_failures} consecutive failures"
            )
            out[f"endpoint:{name}"] = (not failing, reason if failing else None)
        return out

    async def outbox_counts(self) -> OutboxCounts:
        items = {
            (name, state): n
            for name in self.clients
            for state, n in (await self.store.outbox.counts(endpoint=name)).items()
        }
        return OutboxCounts(
            items, {ep: st.retried for ep, st in self.worker.stats().items()}, await self.oldest_pending()
        )

    async def oldest_pending(self) -> dict[str, datetime]:
        """When the oldest item still waiting (queued or sending) for each endpoint was accepted."""
        out: dict[str, datetime] = {}
        for name in self.clients:
            head = await self.store.outbox.list(
                states=[OutboxState.QUEUED, OutboxState.SENDING], endpoint=name, limit=1
            )
            if head:
                out[name] = head[0].created_at
        return out

    def permits(self, role: Role, verb: str, record: str) -> Permission:
        """The rule files' grant check (``[permissions]``): allowed, and the rule that decided."""
        return self.policy.permits(role, verb, record)


@asynccontextmanager
async def running_exchange(
    settings: Settings, *, directory: Directory, start_workers: bool = True, **kwargs: Any
) -> AsyncIterator[ExchangeService]:
    """Open the exchange (store, clients, policy), start its workers, and close it all afterwards."""
    exchange = await ExchangeService.open(settings, directory=directory, **kwargs)
    try:
        if start_workers:
            await exchange.start()
        yield exchange
    finally:
        # stops the workers first: in-flight deliveries finish or their leases lapse for another
        await exchange.close()


def outbound_settings(settings: Settings) -> OutboundSettings:
    return OutboundSettings(
        lease_seconds=settings.store.lease_seconds,
        max_attempts=settings.outbox.max_attempts,
        base_backoff_seconds=settings.outbox.base_backoff_seconds,
        max_backoff_seconds=settings.outbox.max_backoff_seconds,
    )


def default_inbound_settings(settings: Settings) -> InboundSettings:
    token = os.environ.get(settings.server.notification_token_env or "") or None
    url = f"{settings.server.public_url.rstrip('/')}/fhir/notify" if settings.server.public_url else None
    return InboundSettings(
        notify_url=url,
        notify_token=token,
        poll_seconds={n: ep.poll_interval_seconds for n, ep in settings.endpoints.items()},
        subscribe={n: ep.subscribe for n, ep in settings.endpoints.items()},
    )
