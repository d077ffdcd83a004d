"""What an integrator operates, per endpoint: status, breaker, last success, backlog and its age,
dead letters with their reasons, the referral subscription; and retrying a dead letter (audited).

Read models only carry ids, states, codes and the short error the outbox keeps (status and issue
codes, never the OperationOutcome's text, which may echo identifiers), so the operations page shows
no PHI. ``GET /ops`` renders :meth:`Operations.endpoints`; its retry button calls :meth:`retry_dead`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bridge.errors import InputError, NotFoundInStoreError
from bridge.exchange.context import ExchangeContext
from bridge.exchange.inbound import InboundSync
from bridge.exchange.views import Actor
from bridge.store import OutboxState

DEAD_SHOWN = 50  # dead letters listed per endpoint (the oldest first); the CLI lists them all


@dataclass(frozen=True)
class DeadLetter:
    id: str
    kind: str
    attempts: int
    reason: str
    since: datetime  # when it was dead-lettered


@dataclass(frozen=True)
class EndpointOps:
    name: str
    base_url: str
    status: str  # "ok", "failing" (failures, breaker still closed), "down" (breaker open or half-open)
    breaker: str  # closed | open | half-open
    consecutive_failures: int
    last_success: datetime | None
    counts: dict[str, int]
    oldest_pending: datetime | None
    subscription: str  # "backport Subscription/x, last contact ..." | "none: polling only"
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def backlog(self) -> int:
        return self.counts.get("queued", 0) + self.counts.get("sending", 0)


class Operations:
    def __init__(
        self, ctx: ExchangeContext, inbound: InboundSync, wake: Callable[[str | None], None]
    ) -> None:
        self.ctx = ctx
        self.inbound = inbound
        self.wake = wake

    async def endpoints(self) -> list[EndpointOps]:
        """Every configured endpoint's state, with the dead letters of this bridge's organization."""
        out = []
        org = self.ctx.organization
        for name, client in self.ctx.clients.items():
            breaker = client.status().breaker
            if breaker.state != "closed":
                status = "down"
            elif breaker.consecutive_failures:
                status = "failing"
            else:
                status = "ok"
            head = await self.ctx.store.outbox.list(
                states=[OutboxState.QUEUED, OutboxState.SENDING], endpoint=name, limit=1
            )
            dead = await self.ctx.store.outbox.list(
                states=[OutboxState.DEAD],
                endpoint=name,
                organization=org,
                include_unowned=True,
                limit=DEAD_SHOWN,
            )
            last = client.last_success
            out.append(
                EndpointOps(
                    name=name,
                    base_url=client.base_url,
                    status=status,
                    breaker=breaker.state,
                    consecutive_failures=breaker.consecutive_failures,
                    last_success=datetime.fromtimestamp(last, UTC) if last is not None else None,
                    counts=await self.ctx.store.outbox.counts(endpoint=name),
                    oldest_pending=head[0].created_at if head else None,
                    subscription=self._subscription(name),
                    dead=[
                        DeadLetter(i.id, i.kind, i.attempts, i.last_error or "", i.updated_at) for i in dead
                    ],
                )
            )
        return out

    def _subscription(self, endpoint: str) -> str:
        sub = self.inbound.subs.get(endpoint)
        if sub is None or sub.subscription_id is None:
            return "none: polling only"
        contact = sub.last_contact.isoformat(timespec="seconds") if sub.last_contact else "none yet"
        return f"{sub.kind} Subscription/{sub.subscription_id}, last contact {contact}"

    async def retry_dead(self, item_id: str, *, actor: Actor) -> None:
        """Put one dead letter back in the queue (attempts restart), audited as ``outbox.retry``."""
        item = await self.ctx.store.outbox.get(item_id)  # NotFoundInStoreError: 404
        if item.organization not in (None, self.ctx.organization):
            raise NotFoundInStoreError(f"no outbox item {item_id!r}")  # another organization's
        if item.state is not OutboxState.DEAD:
            raise InputError("id", f"not a dead letter (it is {item.state.value})")
        now = self.ctx.clock()
        requeued = await self.ctx.store.outbox.retry([item_id], now=now)
        await self.ctx.audit(
            actor,
            "outbox.retry",
            item_id,
            detail={"kind": item.kind, "endpoint": item.endpoint, "requeued": requeued},
            at=now,
        )
        self.wake(item.endpoint)
