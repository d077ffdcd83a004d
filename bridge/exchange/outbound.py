"""The outbound worker: outbox -> FHIR transaction -> EHR, with retries and a dead letter.

One loop per endpoint claims due items (partition heads only, see :mod:`bridge.store.outbox`) up to
that endpoint's free concurrency slots and delivers each in its own task:

    prepare (map + privacy gate, at delivery time) -> POST transaction -> record FHIR ids -> delivered
    RetryableError (429, 5xx, transport, breaker) -> queued again after the backoff (retry.py)
    PermanentError, MappingError, PolicyError, or the attempt budget used up -> dead, with the reason

A lease renewer runs beside each delivery so a slow EHR does not make the item claimable by another
instance mid-request. When an endpoint answers again after failures, its waiting backlog is made
due at once (``Outbox.expedite``) instead of each item sitting out its own backoff.
Each delivery is one disclosure: the audit entry is written in the same transaction as the
``delivered`` state; deliveries finishing together share that transaction (``_Recorder``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.clients import AsyncFhirClient, BundleResult
from bridge.clients.retry import backoff_seconds
from bridge.errors import (
    BridgeError,
    CircuitOpenError,
    EndpointTimeoutError,
    FhirHttpError,
    RetryableError,
    ServerUnavailableError,
    ThrottledError,
)
from bridge.exchange.events import NO_EVENTS, ExchangeEvents
from bridge.exchange.sending import Prepared, check_references, send_submission
from bridge.store import OutboxItem, Store

log = logging.getLogger("bridge.exchange.outbound")

Clock = Callable[[], datetime]
# prepare(item, now) -> the transaction Bundle to send (or a Prepared: the Bundle and what was left
# out of it, with why); raises MappingError / PolicyError to refuse
Prepare = Callable[[OutboxItem, datetime], Awaitable[Mapping[str, Any] | Prepared]]
# after a delivery is recorded (e.g. the referral's Task lists the service): never fails it
Delivered = Callable[[OutboxItem, Mapping[str, Any]], Awaitable[None]]
# the resources that carry each kind of work: without one of them written, nothing was delivered
REQUIRED = {"encounter": ("Encounter", "Procedure"), "note": ("DocumentReference",)}


@dataclass(frozen=True)
class OutboundSettings:
    lease_seconds: float = 60.0
    max_attempts: int = 12
    base_backoff_seconds: float = 2.0
    max_backoff_seconds: float = 3600.0
    idle_poll_seconds: float = 1.0  # how often an idle loop looks for work it was not woken for


@dataclass
class EndpointStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    failing: bool = False


@dataclass
class _Loop:
    endpoint: str
    client: AsyncFhirClient
    capacity: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    references_checked: bool = False  # the first delivery here reads back what it wrote
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    stats: EndpointStats = field(default_factory=EndpointStats)


def fhir_ids(result: BundleResult) -> dict[str, Any]:
    """What the EHR assigned: ``{"refs": ["Encounter/12", ...], "statuses": [201, 200, ...]}``."""
    refs = [f"{e.resource_type}/{e.id}" for e in result.entries if e.resource_type and e.id]
    return {"refs": refs, "statuses": [e.status for e in result.entries]}


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, BridgeError):
        return f"[{exc.code}] {exc.message}"[:2000]
    return type(exc).__name__


class _Recorder:
    """Records deliveries in groups: one transaction (``delivered`` + the ``disclose`` audit entry
    of each) for every delivery that finished while the previous group was being written.

    The first delivery is written at once; the group grows only while a commit is under way, so
    an idle worker adds no wait, and a busy one makes one commit per group instead of per item.
    A crash before the commit loses nothing: the items are still ``sending`` and come back when
    their leases run out (sent again; the conditional creates make that a no-op at the EHR).
    """

    def __init__(self, worker: OutboundWorker) -> None:
        self._worker = worker
        self._pending: list[tuple[OutboxItem, str, dict[str, Any], asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, item: OutboxItem, endpoint: str, ids: dict[str, Any]) -> bool:
        """Record ``item`` delivered with ``ids``; False when its lease was lost meanwhile."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((item, endpoint, ids, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="outbound:record")
        return await done

    async def _write(self) -> None:
        w = self._worker
        while self._pending:
            group, self._pending = self._pending, []
            try:
                now = w.clock()
                async with w.store.transaction() as conn:
                    recorded = await w.store.outbox.mark_delivered_many(
                        {item.id: ids for item, _, ids, _ in group}, owner=w.owner, now=now, conn=conn
                    )
                    await w.store.audit.append_many(
                        [
                            {
                                "actor": f"bridge:{w.owner}",
                                "action": "disclose",
                                "subject": item.id,
                                "at": now,
                                "source": endpoint,
                                "detail": {
                                    "kind": item.kind,
                                    "record": item.item_key,
                                    "fhir": ids["refs"],
                                    "skipped": [s["type"] for s in ids.get("skipped", [])],
                                },
                            }
                            for item, endpoint, ids, _ in group
                            if item.id in recorded
                        ],
                        conn=conn,
                    )
            except Exception as exc:  # each delivery sees the store's error (its lease will expire)
                for _, _, _, done in group:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for item, _, _, done in group:
                if not done.done():
                    done.set_result(item.id in recorded)


class OutboundWorker:
    """Delivers outbox items for the endpoints in ``clients``; ``owner`` names this instance."""

    def __init__(
        self,
        store: Store,
        clients: Mapping[str, AsyncFhirClient],
        prepare: Prepare,
        *,
        owner: str,
        clock: Clock,
        settings: OutboundSettings | None = None,
        concurrency: Mapping[str, int] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.prepare = prepare
        self.owner = owner
        self.clock = clock
        self.settings = settings or OutboundSettings()
        self._rng = rng or random.Random()
        self._loops = {
            name: _Loop(name, client, (concurrency or {}).get(name, client.max_concurrency))
            for name, client in clients.items()
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._recorder = _Recorder(self)
        self.events: ExchangeEvents = NO_EVENTS
        self.on_delivered: Delivered | None = None

    # --- control ---------------------------------------------------------------------------------

    def stats(self) -> dict[str, EndpointStats]:
        return {name: loop.stats for name, loop in self._loops.items()}

    def wake(self, endpoint: str | None = None) -> None:
        """New work was queued: look now instead of at the next idle poll."""
        for name, loop in self._loops.items():
            if endpoint is None or name == endpoint:
                loop.wake.set()

    def start(self) -> None:
        if self._tasks:
            return
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._run(loop), name=f"outbound:{loop.endpoint}")
            for loop in self._loops.values()
        ]

    async def stop(self) -> None:
        """Stop claiming and wait for deliveries in flight (their results are recorded)."""
        self._stopping.set()
        self.wake()
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self, loop: _Loop) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self.run_once(loop.endpoint)
            except BridgeError as exc:  # store trouble: keep the loop alive, try again shortly
                log.warning("outbound %s: claim failed: [%s]", loop.endpoint, exc.code)
                claimed = 0
            if claimed and len(loop.in_flight) < loop.capacity:
                continue  # there may be more due work
            loop.wake.clear()
            waiters: set[asyncio.Task[Any]] = {asyncio.ensure_future(loop.wake.wait())}
            await asyncio.wait(
                waiters | loop.in_flight,
                timeout=self.settings.idle_poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for w in waiters:
                w.cancel()
        if loop.in_flight:
            await asyncio.gather(*loop.in_flight, return_exceptions=True)

    async def run_once(self, endpoint: str) -> int:
        """Claim what fits into the free slots of ``endpoint`` and start delivering it."""
        loop = self._loops[endpoint]
        free = loop.capacity - len(loop.in_flight)
        if free <= 0:
            return 0
        items = await self.store.outbox.claim(
            owner=self.owner,
            now=self.clock(),
            lease_seconds=self.settings.lease_seconds,
            limit=free,
            endpoint=endpoint,
        )
        for item in items:
            task = asyncio.create_task(self._deliver(loop, item), name=f"deliver:{item.id}")
            loop.in_flight.add(task)
            task.add_done_callback(loop.in_flight.discard)
        return len(items)

    async def drain(self, endpoint: str) -> None:
        """Deliver until nothing is due for ``endpoint`` (tests and one-shot runs)."""
        loop = self._loops[endpoint]
        while True:
            started = await self.run_once(endpoint)
            if loop.in_flight:
                await asyncio.wait(loop.in_flight, return_when=asyncio.FIRST_COMPLETED)
            elif not started:
                return

    # --- one delivery ----------------------------------------------------------------------------

    async def _renew(self, item: OutboxItem) -> None:
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            held = await self.store.outbox.renew(
                item.id, owner=self.owner, now=self.clock(), lease_seconds=self.settings.lease_seconds
            )
            if not held:
                return

    async def _deliver(self, loop: _Loop, item: OutboxItem) -> None:
        renewer = asyncio.create_task(self._renew(item))
        try:
            await self._attempt(loop, item)
        except BridgeError as exc:  # recording the outcome failed; the lease will expire and retry
            log.warning("outbound %s: could not record %s: [%s]", loop.endpoint, item.id, exc.code)
        finally:
            renewer.cancel()

    async def _attempt(self, loop: _Loop, item: OutboxItem) -> None:
        try:
            prepared = await self.prepare(item, self.clock())
            if not isinstance(prepared, Prepared):
                prepared = Prepared(prepared)
            sent = await send_submission(
                loop.client,
                prepared.bundle,
                skipped=prepared.skipped,
                required=REQUIRED.get(item.kind, ()),
            )
        except RetryableError as exc:
            await self._failed(loop, item, exc, retryable=True)
            return
        except BridgeError as exc:  # permanent: EHR refusal, mapping, policy (consent revoked ...)
            await self._failed(loop, item, exc, retryable=False)
            return
        except Exception as exc:
            # a payload an older version queued, or a bug: it fails the same way every time, and
            # escaping here left the item 'sending' to be claimed and fail again at each lease expiry.
            # The type only: messages such as pydantic's quote the input (PHI).
            await self._dead(loop, item, _short_error(exc), None)
            return
        ids = sent.result()
        if not loop.references_checked:
            # a server new to the bridge: does it keep the patient reference as sent?
            try:
                ids["references_ok"] = await check_references(loop.client, prepared.bundle, sent)
                loop.references_checked = True
            except BridgeError as exc:
                log.warning("outbound %s: could not read back %s: [%s]", loop.endpoint, item.id, exc.code)
        delivered = await self._recorder.record(item, loop.endpoint, ids)
        now = self.clock()
        loop.stats.delivered += 1
        self.events.delivery(loop.endpoint, "delivered")
        log.info(
            "outbound %s: %s delivered (%s, attempt %d)",
            loop.endpoint,
            item.id,
            item.kind,
            item.attempts,
            extra={"endpoint": loop.endpoint, "submission_id": item.id, "event": "delivered"},
        )
        if delivered and self.on_delivered is not None:
            await self.on_delivered(item, ids)
        if loop.stats.failing:
            loop.stats.failing = False
            # the endpoint is back: let the backlog go now rather than at each item's backoff
            await self.store.outbox.expedite(endpoint=loop.endpoint, now=now)

    async def _failed(self, loop: _Loop, item: OutboxItem, exc: BridgeError, *, retryable: bool) -> None:
        outcome = exc.outcome if isinstance(exc, FhirHttpError) else None
        error = _short_error(exc)
        sent = not isinstance(exc, CircuitOpenError)  # the breaker refused before anything went out
        if not retryable or (sent and item.attempts >= self.settings.max_attempts):
            if retryable:
                error = f"gave up after {item.attempts} attempts: {error}"
            await self._dead(loop, item, error, outcome)
            return
        loop.stats.failing = True
        retry_after = exc.retry_after if isinstance(exc, (ThrottledError, ServerUnavailableError)) else None
        if not sent:  # come back when the breaker lets a trial through, not before
            retry_after = loop.client.breaker.status().retry_in_seconds
        delay = backoff_seconds(
            item.attempts,
            base=self.settings.base_backoff_seconds,
            cap=self.settings.max_backoff_seconds,
            jitter=self._rng.random(),
            retry_after=retry_after,
        )
        now = self.clock()
        await self.store.outbox.mark_retry(
            item.id,
            owner=self.owner,
            now=now,
            next_attempt_at=now + timedelta(seconds=delay),
            error=error,
            outcome=outcome,
            count_attempt=sent,
        )
        loop.stats.retried += 1
        kind = "timeout" if isinstance(exc, EndpointTimeoutError) else "retry"
        self.events.delivery(loop.endpoint, kind)
        log.info(
            "outbound %s: %s will be retried in %.0f s (%s)",
            loop.endpoint,
            item.id,
            delay,
            exc.code,
            extra={"endpoint": loop.endpoint, "submission_id": item.id, "event": kind, "code": exc.code},
        )

    async def _dead(
        self, loop: _Loop, item: OutboxItem, error: str, outcome: Mapping[str, Any] | None
    ) -> None:
        now = self.clock()
        async with self.store.transaction() as conn:
            if await self.store.outbox.mark_dead(
                item.id, owner=self.owner, now=now, error=error, outcome=outcome, conn=conn
            ):
                await self.store.audit.append(
                    actor=f"bridge:{self.owner}",
                    action="dead-letter",
                    subject=item.id,
                    at=now,
                    outcome="failed",
                    source=loop.endpoint,
                    detail={"kind": item.kind, "record": item.item_key, "error": error[:500]},
                    conn=conn,
                )
        loop.stats.dead += 1
        self.events.delivery(loop.endpoint, "dead")
        # the reason names the status and issue codes only (the OperationOutcome, which may quote
        # identifiers, is kept on the item); the log still gets just the error code
        log.warning(
            "outbound %s: %s dead-lettered (%s)", loop.endpoint, item.id, error.split("]")[0].lstrip("[")
        )
