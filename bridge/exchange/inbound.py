"""Inbound referrals: subscription set-up, notifications, gap detection, catch-up polling, inbox.

Per endpoint (R4 Subscriptions Backport IG, http://hl7.org/fhir/uv/subscriptions-backport):

1. Find the peer organization at the EHR (conditional create by its stable identifier) so Tasks
   can name it as ``owner``.
2. Subscribe: a topic-based (backport) subscription when the CapabilityStatement advertises a Task
   topic, filtered on ``Task?owner=Organization/<id>``, id-only payload, with heartbeats; else an
   R4 criteria subscription (``Task?owner=…``, rest-hook, empty ping); else polling only.
3. Notifications: handshake and heartbeat carry ``events-since-subscription-start``; an event
   notification names the Tasks. A count above what we have seen is a gap (events are never
   resent once the subscription went to ``error``): after a short grace for out-of-order delivery,
   a catch-up poll runs. A missed heartbeat makes the watchdog read ``$status``, re-request the
   subscription when it is not active, and poll.
4. Poll: ``Task?owner=…&_lastUpdated=ge<cursor>&_sort=_lastUpdated&_count=100&_include=Task:focus``
   (cursor kept in the store), following ``next`` links; when fewer Tasks were read than the
   search's ``total`` and no link is left (servers that cut a search without paging), the window
   is narrowed to start at the last instant read and read again, so nothing is lost. At the
   endpoint's interval (domain.md: hourly recommended; an integrator may lower it to 60 s, which is
   logged as a warning below 15 minutes); a ping on the notification endpoint polls at once.
5. Each Task: Task + focus ServiceRequest + Patient basics -> minimum-necessary reduction ->
   :class:`bridge.domain.Referral` -> inbox (de-duplicated on Task version) -> audit ``receive``.

The Subscription resources and the reading of notifications are pure
(:mod:`bridge.mappers.subscription`). This module is longer than most (~630 lines, with the
polls that narrow their window when a server cuts a page) because :class:`InboundSync` is one
state machine per endpoint: subscribing, the watchdog, gap checks and polls share that endpoint's
subscription state, cursor and poll lock; split, each half would reach into the other's state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.clients import AsyncFhirClient
from bridge.clients.retry import backoff_seconds
from bridge.domain import Referral
from bridge.errors import BridgeError, FhirHttpError, InputError, MappingError
from bridge.exchange.events import NO_EVENTS, ExchangeEvents
from bridge.mappers.subscription import (
    Notification,
    RestHook,
    backport_subscription,
    criteria_subscription,
    parse_notification,
    task_criteria,
)
from bridge.store import Store

log = logging.getLogger("bridge.exchange.inbound")

MIN_POLL_SECONDS = 60.0  # the lowest interval an integrator may set (domain.md)
ADVISED_POLL_SECONDS = 15 * 60.0  # below this, a warning at start
POLL_PAGE_SIZE = 100
POLL_RETRY_SECONDS = 5.0  # the first wait after a failed poll; doubles up to the poll interval
# a Task whose ServiceRequest or Patient answers this is skipped (audited), not retried: the same
# answer would come back on every poll
_GONE = (404, 410)

Clock = Callable[[], datetime]
# (task, service_request, patient | None, endpoint, supporting) -> the peer view; raises MappingError
Reduce = Callable[
    [Mapping[str, Any], Mapping[str, Any], Mapping[str, Any] | None, str, Sequence[Mapping[str, Any]]],
    Referral,
]
# (task, service_request) -> the references the peer view may show (Goal, Appointment ...): read them
Wanted = Callable[[Mapping[str, Any], Mapping[str, Any]], Sequence[str]]


def _no_supporting(task: Mapping[str, Any], service_request: Mapping[str, Any]) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class NotificationResult:
    endpoint: str | None
    kind: str
    stored: int  # referrals new or changed in the inbox
    gap: bool  # a catch-up poll was started


@dataclass
class _SubState:
    subscription_id: str | None = None
    kind: str | None = None  # backport | criteria | None (polling only)
    heartbeat_seconds: float | None = None
    seen: int = 0  # highest events-since-subscription-start accounted for
    last_contact: datetime | None = None
    gap_check: asyncio.Task[None] | None = None


# a notification's event counts are the sender's word: further ahead of what we have seen than
# this, a count is not believed (a gap all the same: caught up by polling)
MAX_EVENT_JUMP = 10_000


def _instant(stamp: str) -> datetime:
    """A FHIR instant as an aware datetime ('Z' and offsets alike), for comparing across offsets."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _type_id(ref: str) -> tuple[str, str] | None:
    parts = ref.split("/_history")[0].rstrip("/").split("/")
    if len(parts) < 2:
        return None
    return parts[-2], parts[-1]


@dataclass(frozen=True)
class InboundSettings:
    notify_url: str | None = None  # where the EHR posts notifications (None: polling only)
    notify_token: str | None = None  # sent back in the Authorization header of each notification
    heartbeat_seconds: int = 60
    poll_seconds: Mapping[str, float] = field(default_factory=dict)  # per endpoint
    allow_fast_poll: bool = False  # tests and benchmarks only: below domain.md's 15-minute floor
    gap_grace_seconds: float = 0.5
    subscribe: Mapping[str, bool] = field(default_factory=dict)


class InboundSync:
    """Keeps the inbox in step with the Tasks the EHRs assign to the peer organization."""

    def __init__(
        self,
        store: Store,
        clients: Mapping[str, AsyncFhirClient],
        reduce: Reduce,
        *,
        owner_for: Callable[[str], Awaitable[str]],  # endpoint -> "Organization/<id>" at that EHR
        clock: Clock,
        settings: InboundSettings,
        actor: str = "bridge",
        wanted: Wanted = _no_supporting,
    ) -> None:
        self.store = store
        self.clients = clients
        self.reduce = reduce
        self.wanted = wanted
        self.owner_for = owner_for
        self.clock = clock
        self.settings = settings
        self.actor = actor
        self.subs: dict[str, _SubState] = {name: _SubState() for name in clients}
        self._tasks: list[asyncio.Task[None]] = []
        self._poll_locks = {name: asyncio.Lock() for name in clients}
        self.events: ExchangeEvents = NO_EVENTS

    # --- subscriptions ---------------------------------------------------------------------------

    async def subscribe(self, endpoint: str) -> _SubState:
        """Create (or reuse) this endpoint's subscription; polling only when it cannot be had."""
        state = self.subs[endpoint]
        if not self.settings.notify_url or not self.settings.subscribe.get(endpoint, True):
            return state
        client = self.clients[endpoint]
        owner = await self.owner_for(endpoint)
        caps = await client.capabilities(refresh=True)
        criteria = task_criteria(owner)
        topic = caps.task_topic
        channel = RestHook(self.settings.notify_url, self.settings.notify_token)
        if topic:
            sub = backport_subscription(
                topic, criteria, channel, heartbeat_seconds=self.settings.heartbeat_seconds
            )
            kind = "backport"
        elif caps.support("Subscription", "create") == "yes":
            # only where the statement says so: a server that merely stores the resource (and
            # never notifies) would give no refusal to learn from, just silence
            sub = criteria_subscription(criteria, channel)
            kind = "criteria"
        else:
            return state
        if await self._reuse(endpoint, kind, topic, criteria):
            return state
        result = await client.create(sub)
        state.subscription_id = result.id
        state.kind = kind
        state.heartbeat_seconds = float(self.settings.heartbeat_seconds) if kind == "backport" else None
        state.seen = 0
        state.last_contact = self.clock()
        await self.store.sync.put(
            f"subscription:{endpoint}",
            {
                "id": result.id,
                "kind": kind,
                "topic": topic,
                "criteria": criteria,
                "notify_url": self.settings.notify_url,
            },
            now=self.clock(),
        )
        return state

    async def _reuse(self, endpoint: str, kind: str, topic: str | None, criteria: str) -> bool:
        """Adopt the subscription an earlier run created, when it still exists with the same topic,
        filter and notification URL: restarts must not pile subscriptions up at the EHR. One in
        ``error`` or ``off`` is re-requested (the handshake's event count then shows the gap)."""
        saved = await self.store.sync.get(f"subscription:{endpoint}")
        if not saved or saved.get("kind") != kind or saved.get("criteria") != criteria:
            return False
        if saved.get("topic") != topic or saved.get("notify_url") != self.settings.notify_url:
            return False
        try:
            current = await self.clients[endpoint].read_raw(f"Subscription/{saved['id']}")
        except FhirHttpError:
            return False  # deleted at the EHR: make a new one
        state = self.subs[endpoint]
        state.subscription_id = str(saved["id"])
        state.kind = kind
        state.heartbeat_seconds = float(self.settings.heartbeat_seconds) if kind == "backport" else None
        state.last_contact = self.clock()
        if current.get("status") != "active":
            await self.reactivate(endpoint)
        # what happened while we were away is fetched by the first poll, which runs at start
        return True

    async def reactivate(self, endpoint: str) -> None:
        """Put an errored subscription back to ``requested``: the server handshakes again."""
        state = self.subs[endpoint]
        if state.subscription_id is None:
            return
        client = self.clients[endpoint]
        current = await client.read_raw(f"Subscription/{state.subscription_id}")
        current["status"] = "requested"
        current.pop("error", None)
        await client.update(current)

    async def subscription_status(self, endpoint: str) -> str | None:
        """The server's view of our subscription (``$status``, else a read)."""
        state = self.subs[endpoint]
        if state.subscription_id is None:
            return None
        client = self.clients[endpoint]
        try:
            bundle = await client.read_raw(f"Subscription/{state.subscription_id}/$status")
            for e in bundle.get("entry") or []:
                for p in (e.get("resource") or {}).get("parameter") or []:
                    if p.get("name") == "status":
                        return str(p.get("valueCode"))
        except FhirHttpError:
            pass
        sub = await client.read_raw(f"Subscription/{state.subscription_id}")
        return str(sub.get("status"))

    # --- notifications ---------------------------------------------------------------------------

    def endpoint_for(self, note: Notification) -> str | None:
        if note.subscription:
            for name, client in self.clients.items():
                if note.subscription.startswith(client.base_url + "/"):
                    return name
            sub_id = note.subscription.rstrip("/").split("/")[-1]
            for name, state in self.subs.items():
                if state.subscription_id == sub_id:
                    return name
        if len(self.clients) == 1:
            return next(iter(self.clients))
        return None

    async def handle_notification(
        self, body: Mapping[str, Any] | None, *, endpoint: str | None = None
    ) -> NotificationResult:
        note = parse_notification(body)
        if note.kind == "ping":  # "something changed": look ourselves, whatever the subscription kind
            targets = [endpoint] if endpoint else list(self.clients)
            stored = 0
            for name in targets:
                self.subs[name].last_contact = self.clock()
                stored += await self.poll(name, catch_up=True)
            return NotificationResult(endpoint, note.kind, stored, False)
        endpoint = endpoint or self.endpoint_for(note)
        if endpoint is None or endpoint not in self.clients:
            raise InputError("notification.subscription", "does not belong to a configured endpoint")
        state = self.subs[endpoint]
        state.last_contact = self.clock()
        stored = 0
        if note.kind == "event-notification":
            stored = await self._ingest_focus(endpoint, note)
            plausible = [n for n in note.event_numbers if n <= state.seen + MAX_EVENT_JUMP]
            state.seen = max(state.seen, *plausible) if plausible else state.seen
        count = note.events_since_start
        gap = count is not None and count > state.seen
        if gap and count is not None:
            # the sender's count, not ours: one implausibly far ahead is a gap all the same, but
            # never the new baseline (a forged 10**30 would have ended gap detection for good)
            self._schedule_gap_check(endpoint, count if count - state.seen <= MAX_EVENT_JUMP else None)
        return NotificationResult(endpoint, note.kind, stored, gap)

    async def server_event_count(self, endpoint: str) -> int | None:
        """``events-since-subscription-start`` as the EHR itself answers ``$status`` (None: unknown)."""
        state = self.subs[endpoint]
        if state.subscription_id is None:
            return None
        try:
            bundle = await self.clients[endpoint].read_raw(f"Subscription/{state.subscription_id}/$status")
        except FhirHttpError:
            return None
        for e in bundle.get("entry") or []:
            for p in (e.get("resource") or {}).get("parameter") or []:
                if isinstance(p, dict) and p.get("name") == "events-since-subscription-start":
                    raw = p.get("valueString", p.get("valueInteger64", p.get("valueUnsignedInt")))
                    try:
                        return int(str(raw))
                    except ValueError:
                        return None
        return None

    def _schedule_gap_check(self, endpoint: str, expected: int | None) -> None:
        """A catch-up poll unless the missing events arrive meanwhile; ``expected`` None: the count
        was implausible, so afterwards only the EHR's own ``$status`` count is taken."""
        state = self.subs[endpoint]
        if state.gap_check is not None and not state.gap_check.done():
            return

        async def check() -> None:
            # events are sent concurrently and may arrive out of order: give them a moment
            await asyncio.sleep(self.settings.gap_grace_seconds)
            if expected is None:
                log.warning("inbound %s: implausible event count in a notification: catch-up poll", endpoint)
            elif state.seen >= expected:
                return
            else:
                log.info(
                    "inbound %s: gap (seen %d of %d events): catch-up poll", endpoint, state.seen, expected
                )
            try:
                await self.poll(endpoint, catch_up=True)
                trusted = expected if expected is not None else await self.server_event_count(endpoint)
            except BridgeError as exc:
                log.warning("inbound %s: catch-up poll failed: [%s]", endpoint, exc.code)
                return
            if trusted is not None:
                state.seen = max(state.seen, trusted)

        state.gap_check = asyncio.create_task(check(), name=f"gap-check:{endpoint}")

    async def _ingest_focus(self, endpoint: str, note: Notification) -> int:
        stored = 0
        by_ref = {
            f"{r.get('resourceType')}/{r.get('id')}": r
            for r in note.resources
            if r.get("resourceType") == "Task"
        }
        for ref in note.focus:
            ti = _type_id(ref)
            if ti is None or ti[0] != "Task":
                continue
            # an id-only notification says only that something changed: read the Task ourselves,
            # with its focus, rather than trusting a payload
            stored += await self.fetch_task(endpoint, ti[1])
            by_ref.pop(f"Task/{ti[1]}", None)
        for task in by_ref.values():
            stored += await self.fetch_task(endpoint, str(task["id"]))
        return stored

    # --- fetching and storing ---------------------------------------------------------------------

    async def fetch_task(self, endpoint: str, task_id: str) -> int:
        stored = 0
        params = [("_id", task_id), ("_include", "Task:focus")]
        async for page in self.clients[endpoint].pages_raw("Task", params):
            stored += await self._store_tasks(endpoint, page.matches, page.included)
        return stored

    async def _store_tasks(
        self, endpoint: str, tasks: Sequence[Mapping[str, Any]], included: Sequence[Mapping[str, Any]]
    ) -> int:
        client = self.clients[endpoint]
        srs = {f"ServiceRequest/{r['id']}": r for r in included if r.get("resourceType") == "ServiceRequest"}
        stored = 0
        owner = await self.owner_for(endpoint)
        for task in tasks:
            if not self._owned(client, task, owner):
                # a notification (or a PUT of a Task) naming another organization's Task: not ours
                # to show a peer, nor to change
                log.warning("inbound %s: Task/%s is not owned by us; skipped", endpoint, task.get("id"))
                await self._skipped(endpoint, task, "not_owned")
                continue
            focus = _type_id(str((task.get("focus") or {}).get("reference", "")))
            if focus is None or focus[0] != "ServiceRequest":
                log.info("inbound %s: Task/%s has no ServiceRequest focus; skipped", endpoint, task.get("id"))
                continue
            sr = srs.get(f"ServiceRequest/{focus[1]}")
            try:
                if sr is None:
                    sr = await client.read_raw(f"ServiceRequest/{focus[1]}")
                patient = None
                pat = _type_id(str((task.get("for") or sr.get("subject") or {}).get("reference", "")))
                if pat is not None and pat[0] == "Patient":
                    patient = await client.read_raw(f"Patient/{pat[1]}")
                supporting = await self._supporting(client, self.wanted(task, sr))
                referral = self.reduce(task, sr, patient, endpoint, supporting)
            except MappingError as exc:
                # one malformed referral must not stop the others; the reason names the element
                log.warning("inbound %s: Task/%s not usable: %s", endpoint, task.get("id"), exc.message)
                await self._skipped(endpoint, task, exc.code, field=exc.field)
                continue
            except FhirHttpError as exc:
                if exc.status not in _GONE:
                    raise  # auth, throttling, outages: the whole poll retries later, nothing skipped
                # its ServiceRequest or Patient was deleted: raised out of poll() this stopped every
                # later poll at the same Task, so no referral after it ever arrived
                log.warning(
                    "inbound %s: Task/%s skipped: a resource it needs is gone", endpoint, task.get("id")
                )
                await self._skipped(endpoint, task, exc.code, status=exc.status)
                continue
            now = self.clock()
            async with self.store.transaction() as conn:
                changed = await self.store.inbox.upsert(referral, now=now, conn=conn)
                if changed:
                    await self.store.audit.append(
                        actor=self.actor,
                        action="receive",
                        subject=referral.id,
                        at=now,
                        source=endpoint,
                        detail={
                            "task": f"Task/{referral.task_id}",
                            "version": referral.task_version,
                            "status": referral.status.value,
                        },
                        conn=conn,
                    )
            if changed:
                self.events.referral_received(endpoint)
                log.info(
                    "inbound %s: referral %s received (Task/%s, %s)",
                    endpoint,
                    referral.id,
                    referral.task_id,
                    referral.status.value,
                    extra={"endpoint": endpoint, "referral_id": referral.id, "event": "received"},
                )
            stored += int(changed)
        return stored

    @staticmethod
    def _owned(client: AsyncFhirClient, task: Mapping[str, Any], owner: str) -> bool:
        """Whether the Task as the EHR gave it names ``owner`` (``Organization/<id>``, relative or
        absolute at this endpoint) as its owner."""
        owned_by = task.get("owner")
        ref = str(owned_by.get("reference", "")) if isinstance(owned_by, dict) else ""
        ref = ref.split("/_history")[0].removeprefix(client.base_url.rstrip("/") + "/")
        return ref == owner

    async def _skipped(self, endpoint: str, task: Mapping[str, Any], code: str, **why: Any) -> None:
        """Audit a Task left out of the inbox, so an operator can find it (the log line alone is
        easy to miss); the clinician's next change to it brings it round again. Once per Task
        version: the poll cursor is inclusive, so the newest Task is read again at every poll."""
        subject = f"Task/{task.get('id')}"
        version = (task.get("meta") or {}).get("versionId")
        earlier = await self.store.audit.entries(subject=subject, action="receive.skipped")
        if any(e.source == endpoint and (e.detail or {}).get("version") == version for e in earlier):
            return
        await self.store.audit.append(
            actor=self.actor,
            action="receive.skipped",
            subject=subject,
            at=self.clock(),
            outcome="skipped",
            source=endpoint,
            detail={"code": code, "version": version, **why},
        )

    async def _supporting(self, client: AsyncFhirClient, refs: Sequence[str]) -> list[Mapping[str, Any]]:
        """Read the Goals, Appointments ... a referral points at; one that cannot be read (gone,
        forbidden) leaves the referral without it rather than keeping the referral out."""
        found: list[Mapping[str, Any]] = []
        for ref in refs:
            ti = _type_id(ref)
            if ti is None or ("://" in ref and not ref.startswith(client.base_url + "/")):
                continue  # another server's resource: not ours to fetch with this client
            try:
                found.append(await client.read_raw(f"{ti[0]}/{ti[1]}"))
            except FhirHttpError as exc:
                log.info("inbound: %s/%s not readable (%s); referral kept without it", ti[0], ti[1], exc.code)
        return found

    async def poll(self, endpoint: str, *, catch_up: bool = False) -> int:
        """Fetch Tasks owned by the peer organization changed since the cursor; returns how many
        referrals were new or changed. One poll per endpoint at a time."""
        async with self._poll_locks[endpoint]:
            key = f"poll:{endpoint}"
            cursor = (await self.store.sync.get(key) or {}).get("since")
            stored = 0
            newest = cursor
            since = cursor
            while True:
                read, total, stamps, count = await self._poll_window(endpoint, since)
                stored += count
                for stamp in stamps:
                    if newest is None or _instant(stamp) > _instant(newest):
                        newest = stamp
                if total is None or read >= total:
                    break
                # the server cut the search without a next link: read again from the last instant
                # read (ge: Tasks of that instant come again and the inbox de-duplicates them)
                ordered = all(_instant(a) <= _instant(b) for a, b in itertools.pairwise(stamps))
                last = stamps[-1] if stamps else None
                if not ordered or last is None or (since is not None and _instant(last) <= _instant(since)):
                    log.warning(
                        "inbound %s: the search was cut at %d of %d Tasks and cannot be narrowed "
                        "(unsorted, or one instant holds a full page); the rest comes at the next poll",
                        endpoint,
                        read,
                        total,
                    )
                    newest = since  # do not move past what was not read
                    break
                log.info(
                    "inbound %s: search cut at %d of %d Tasks: narrowing the window", endpoint, read, total
                )
                since = last
            if newest != cursor:
                await self.store.sync.put(key, {"since": newest}, now=self.clock())
            return stored

    async def _poll_window(self, endpoint: str, since: str | None) -> tuple[int, int | None, list[str], int]:
        """One search from ``since`` on, every page: (Tasks read, the search's total, their
        lastUpdated stamps in the order read, referrals stored)."""
        client = self.clients[endpoint]
        owner = await self.owner_for(endpoint)
        params: list[tuple[str, str]] = [
            ("owner", owner),
            ("_sort", "_lastUpdated"),
            ("_count", str(POLL_PAGE_SIZE)),
            ("_include", "Task:focus"),
        ]
        if since:
            # ge, not gt: two updates in the same instant must not hide one; the inbox de-duplicates
            params.append(("_lastUpdated", f"ge{since}"))
        read, stored = 0, 0
        total: int | None = None
        stamps: list[str] = []
        async for page in client.pages_raw("Task", params):
            stored += await self._store_tasks(endpoint, page.matches, page.included)
            read += len(page.matches)
            total = page.total if total is None else total
            stamps += [
                str(stamp) for t in page.matches if (stamp := (t.get("meta") or {}).get("lastUpdated"))
            ]
        return read, total, stamps, stored

    # --- background ------------------------------------------------------------------------------

    def poll_interval(self, endpoint: str) -> float:
        seconds = self.settings.poll_seconds.get(endpoint, 3600.0)
        return seconds if self.settings.allow_fast_poll else max(seconds, MIN_POLL_SECONDS)

    def warn_fast_polling(self) -> list[str]:
        """Log (and return) the endpoints polled more often than every 15 minutes."""
        fast = [n for n in self.clients if self.poll_interval(n) < ADVISED_POLL_SECONDS]
        for name in fast:
            log.warning(
                "inbound %s: polling every %.0f s, more often than the advised 15 minutes: "
                "make sure the EHR allows it",
                name,
                self.poll_interval(name),
            )
        return fast

    async def _watch(self, endpoint: str) -> None:
        """Subscribe, then poll at the interval and watch heartbeats; never dies on an EHR error."""
        state = self.subs[endpoint]
        while True:
            try:
                await self.subscribe(endpoint)
                break
            except BridgeError as exc:
                log.warning("inbound %s: cannot subscribe yet: [%s]", endpoint, exc.code)
                await asyncio.sleep(min(30.0, self.poll_interval(endpoint)))
        next_poll = self.clock()
        failures = 0
        while True:
            now = self.clock()
            try:
                if now >= next_poll:
                    await self.poll(endpoint)
                    failures = 0
                    next_poll = now + timedelta(seconds=self.poll_interval(endpoint))
                await self.check_heartbeat(endpoint)
            except BridgeError as exc:
                # a failing EHR or store: back off (5 s, 10 s, ... up to the interval) instead of
                # polling the EHR every half second until the fault clears
                failures += 1
                cap = self.poll_interval(endpoint)
                delay = backoff_seconds(failures, base=POLL_RETRY_SECONDS, cap=cap, jitter=random.random())
                next_poll = max(next_poll, self.clock() + timedelta(seconds=delay))
                log.warning("inbound %s: sync failed: [%s]; next try in %.0f s", endpoint, exc.code, delay)
            period = state.heartbeat_seconds or self.poll_interval(endpoint)
            await asyncio.sleep(max(0.5, min(period, (next_poll - self.clock()).total_seconds())))

    async def check_heartbeat(self, endpoint: str) -> bool:
        """True when a heartbeat was missed (and recovery ran: $status, re-request, catch-up poll)."""
        state = self.subs[endpoint]
        if state.kind != "backport" or state.heartbeat_seconds is None or state.last_contact is None:
            return False
        late = self.clock() - state.last_contact > timedelta(seconds=2 * state.heartbeat_seconds)
        if not late:
            return False
        status = await self.subscription_status(endpoint)
        log.info("inbound %s: heartbeat missed; subscription status %s", endpoint, status)
        if status != "active":
            await self.reactivate(endpoint)
        state.last_contact = self.clock()
        await self.poll(endpoint, catch_up=True)
        return True

    def start(self) -> None:
        if not self._tasks:
            self.warn_fast_polling()
            self._tasks = [asyncio.create_task(self._watch(n), name=f"inbound:{n}") for n in self.clients]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for s in self.subs.values():
            if s.gap_check is not None:
                tasks.append(s.gap_check)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["InboundSettings", "InboundSync", "NotificationResult"]
