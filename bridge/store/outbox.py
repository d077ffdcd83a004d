"""The durable outbox: accepted work waits here until an EHR has it (or an operator gives up on it).

States: ``queued`` → ``sending`` (claimed, under a lease) → ``delivered`` | ``dead``; a retryable
failure puts an item back to ``queued`` with a later ``next_attempt_at``. ``held`` is accepted work
the policy keeps back (a co-sign or an escalation missing; the reasons are in ``hold``): never
claimed, never blocking its partition, until :meth:`Outbox.release` queues it (same tracking id).

Claims: one ``UPDATE … WHERE seq IN (SELECT … FOR UPDATE SKIP LOCKED)`` statement, so several
bridge instances on PostgreSQL take disjoint items without waiting on each other (SQLite serialises
writers, and the dialect leaves the clause out). A claim carries a lease; an item whose lease ran
out (its instance died) is claimable again. Every later state change checks the lease owner, so
an instance that lost its lease cannot overwrite the new owner's result. Delivery is therefore
at-least-once; the conditional creates in the transaction make it exactly-once at the EHR.

Ordering: only the head of each ``partition_key`` (participant + endpoint) is claimable: an item
waits while an earlier item of its partition is queued or sending, so a note never overtakes its
encounter, even across instances.

Longer than most modules (~550 lines) because each state change above is one statement whose
lease and partition conditions must agree with the claim's; the grouped delivery record
(``mark_delivered_many``), the operations reads and the statements built once at import (the
claim among them) sit with them for the same reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter, ColumnClause

from bridge.errors import InputError, NotFoundInStoreError
from bridge.store.engine import Database
from bridge.store.schema import outbox


class OutboxState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"
    HELD = "held"  # accepted, kept back by policy until resolved; workers never claim it


PENDING = (OutboxState.QUEUED.value, OutboxState.SENDING.value)
# inline literals, not bound parameters: a partial index is used only when the planner can see
# the query's filter matches the index's WHERE (SQLite decides that before binding)
_PENDING_SQL: list[ColumnClause[Any]] = [literal_column(f"'{s}'") for s in PENDING]

# built once: constructing a statement costs more Python than running it (issue 15's profile)
_ENQUEUE = insert(outbox).returning(*outbox.c)
_GET = select(outbox).where(outbox.c.id == bindparam("id"))
_FIND = (
    select(outbox)
    .where(outbox.c.kind == bindparam("kind"), outbox.c.item_key == bindparam("item_key"))
    .order_by(outbox.c.seq)
)


def _claim(by_endpoint: bool) -> Any:
    """Claim the due partition heads: an item is due when queued and its time has come, or sending
    with its lease run out, and no earlier item of its partition is still pending."""
    prior = outbox.alias("prior")
    blocked = exists().where(
        prior.c.partition_key == outbox.c.partition_key,
        prior.c.seq < outbox.c.seq,
        prior.c.state.in_(_PENDING_SQL),
    )
    now: BindParameter[datetime] = bindparam("now")
    due = or_(
        and_(outbox.c.state == OutboxState.QUEUED.value, outbox.c.next_attempt_at <= now),
        and_(outbox.c.state == OutboxState.SENDING.value, outbox.c.lease_expires_at <= now),
    )
    # the literal state filter lets both databases use the partial "pending" indexes
    candidates = select(outbox.c.seq).where(outbox.c.state.in_(_PENDING_SQL), due, ~blocked)
    if by_endpoint:
        candidates = candidates.where(outbox.c.endpoint == bindparam("for_endpoint"))
    picked = (
        candidates.order_by(outbox.c.seq)
        .limit(bindparam("limit", type_=Integer))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    return (
        update(outbox)
        .where(outbox.c.seq.in_(select(picked.c.seq)))
        .values(
            state=OutboxState.SENDING.value,
            lease_owner=bindparam("new_owner"),
            lease_expires_at=bindparam("new_lease_expires"),
            attempts=outbox.c.attempts + 1,
            updated_at=now,
        )
        .returning(*outbox.c)
    )


_CLAIM = {by: _claim(by) for by in (False, True)}


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    id: str
    kind: str
    endpoint: str
    partition_key: str
    item_key: str
    payload: dict[str, Any]
    state: OutboxState
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    last_outcome: dict[str, Any] | None
    result: dict[str, Any] | None
    submitted_by: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    hold: list[dict[str, Any]] | None = None  # the violations that keep a held item back
    warnings: list[dict[str, Any]] | None = None  # the policy's warnings (rule, severity, message)
    organization: str | None = None  # who it belongs to (None: written before migration 7)

    @classmethod
    def from_row(cls, row: RowMapping) -> OutboxItem:
        data = dict(row)
        data["state"] = OutboxState(data["state"])
        return cls(**data)

    def summary(self) -> dict[str, Any]:
        """Operator view: ids, state and errors; never the payload (PHI)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "item_key": self.item_key,
            "state": self.state.value,
            "hold_rules": [str(v.get("rule")) for v in self.hold or []],
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(),
            "lease_owner": self.lease_owner,
            "last_error": self.last_error,
            "result": self.result,
            "created_at": self.created_at.isoformat(),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
        }


def new_tracking_id() -> str:
    return f"sub-{uuid.uuid4().hex}"


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def enqueue(
        self,
        *,
        kind: str,
        endpoint: str,
        partition_key: str,
        item_key: str,
        payload: Mapping[str, Any],
        now: datetime,
        submitted_by: str | None = None,
        item_id: str | None = None,
        held: Sequence[Mapping[str, Any]] | None = None,
        warnings: Sequence[Mapping[str, Any]] = (),
        organization: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> OutboxItem:
        """Queue one item; pass ``conn`` to make it atomic with an idempotency key and audit entry.

        ``held``: the violations keeping it back; the item is stored ``held`` and never claimed."""
        values = {
            "id": item_id or new_tracking_id(),
            "kind": kind,
            "endpoint": endpoint,
            "partition_key": partition_key,
            "item_key": item_key,
            "payload": dict(payload),
            "state": (OutboxState.QUEUED if held is None else OutboxState.HELD).value,
            "hold": [dict(v) for v in held] if held is not None else None,
            "warnings": [dict(w) for w in warnings],
            "attempts": 0,
            "next_attempt_at": now,
            "submitted_by": submitted_by,
            "organization": organization,
            "created_at": now,
            "updated_at": now,
        }
        async with self._db.tx(conn) as c:
            row = (await c.execute(_ENQUEUE, values)).mappings().one()
        return OutboxItem.from_row(row)

    async def claim(
        self,
        *,
        owner: str,
        now: datetime,
        lease_seconds: float,
        limit: int,
        endpoint: str | None = None,
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due partition heads (for ``endpoint`` if given), oldest first."""
        if limit <= 0:
            return []
        params = {
            "now": now,
            "limit": limit,
            "new_owner": owner,
            "new_lease_expires": now + timedelta(seconds=lease_seconds),
            "for_endpoint": endpoint,
        }
        stmt = _CLAIM[endpoint is not None]
        async with self._db.tx(single=True) as c:
            rows = (await c.execute(stmt, params)).mappings().all()
        return sorted((OutboxItem.from_row(r) for r in rows), key=lambda i: i.seq)

    def _owned(self, item_id: str, owner: str) -> Any:
        return and_(
            outbox.c.id == item_id,
            outbox.c.state == OutboxState.SENDING.value,
            outbox.c.lease_owner == owner,
        )

    async def renew(self, item_id: str, *, owner: str, now: datetime, lease_seconds: float) -> bool:
        """Extend a lease still held (a slow EHR); False when it was lost."""
        stmt = (
            update(outbox)
            .where(self._owned(item_id, owner))
            .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
        )
        async with self._db.tx(single=True) as c:
            return (await c.execute(stmt)).rowcount == 1

    async def _settle(
        self, item_id: str, owner: str, now: datetime, conn: AsyncConnection | None, **values: Any
    ) -> bool:
        """Leave ``sending`` for the state in ``values``, only while ``owner`` still holds the lease."""
        stmt = (
            update(outbox)
            .where(self._owned(item_id, owner))
            .values(**values, lease_owner=None, lease_expires_at=None, updated_at=now)
        )
        async with self._db.tx(conn) as c:
            return (await c.execute(stmt)).rowcount == 1

    async def _fail(
        self,
        item_id: str,
        owner: str,
        now: datetime,
        conn: AsyncConnection | None,
        error: str,
        outcome: Mapping[str, Any] | None,
        **values: Any,
    ) -> bool:
        last_outcome = dict(outcome) if outcome is not None else None
        return await self._settle(
            item_id, owner, now, conn, last_error=error, last_outcome=last_outcome, **values
        )

    async def mark_delivered(
        self,
        item_id: str,
        *,
        owner: str,
        now: datetime,
        result: Mapping[str, Any],
        conn: AsyncConnection | None = None,
    ) -> bool:
        return await self._settle(
            item_id,
            owner,
            now,
            conn,
            state=OutboxState.DELIVERED.value,
            result=dict(result),
            delivered_at=now,
            last_error=None,
        )

    async def mark_delivered_many(
        self,
        results: Mapping[str, Mapping[str, Any]],
        *,
        owner: str,
        now: datetime,
        conn: AsyncConnection | None = None,
    ) -> set[str]:
        """``mark_delivered`` for several items (``{item id: result}``) in one statement; returns
        the ids recorded (those whose lease ``owner`` still held)."""
        if not results:
            return set()
        result_type = outbox.c.result.type
        stmt = (
            update(outbox)
            .where(
                outbox.c.id.in_(list(results)),
                outbox.c.state == OutboxState.SENDING.value,
                outbox.c.lease_owner == owner,
            )
            .values(
                state=OutboxState.DELIVERED.value,
                result=case(
                    {i: bindparam(None, dict(r), type_=result_type) for i, r in results.items()},
                    value=outbox.c.id,
                ),
                delivered_at=now,
                last_error=None,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
            .returning(outbox.c.id)
        )
        async with self._db.tx(conn) as c:
            return {str(r) for r in (await c.execute(stmt)).scalars().all()}

    async def mark_retry(
        self,
        item_id: str,
        *,
        owner: str,
        now: datetime,
        next_attempt_at: datetime,
        error: str,
        outcome: Mapping[str, Any] | None = None,
        count_attempt: bool = True,
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Back to the queue until ``next_attempt_at``. ``count_attempt=False`` when nothing was
        sent (our own circuit breaker refused): a long outage then does not use up the budget."""
        attempts = outbox.c.attempts - (0 if count_attempt else 1)
        return await self._fail(
            item_id,
            owner,
            now,
            conn,
            error,
            outcome,
            state=OutboxState.QUEUED.value,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
        )

    async def mark_dead(
        self,
        item_id: str,
        *,
        owner: str,
        now: datetime,
        error: str,
        outcome: Mapping[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> bool:
        return await self._fail(item_id, owner, now, conn, error, outcome, state=OutboxState.DEAD.value)

    async def release(
        self,
        item_id: str,
        *,
        now: datetime,
        payload: Mapping[str, Any],
        warnings: Sequence[Mapping[str, Any]] | None = None,
        conn: AsyncConnection | None = None,
    ) -> bool:
        """A held item is resolved: queue it (due now) with its updated payload (and the new
        verdict's ``warnings``, when given). False when it was not held (another co-signer was
        first), so a release happens once."""
        values: dict[str, Any] = {
            "state": OutboxState.QUEUED.value,
            "payload": dict(payload),
            "hold": None,
            "next_attempt_at": now,
            "updated_at": now,
        }
        if warnings is not None:
            values["warnings"] = [dict(w) for w in warnings]
        stmt = (
            update(outbox)
            .where(outbox.c.id == item_id, outbox.c.state == OutboxState.HELD.value)
            .values(**values)
        )
        async with self._db.tx(conn) as c:
            return (await c.execute(stmt)).rowcount == 1

    async def rehold(
        self,
        item_id: str,
        *,
        now: datetime,
        payload: Mapping[str, Any],
        hold: Sequence[Mapping[str, Any]],
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Partly resolved (co-signed, but an escalation still missing): keep it held with the
        updated payload and the remaining reasons. False when it was not held."""
        stmt = (
            update(outbox)
            .where(outbox.c.id == item_id, outbox.c.state == OutboxState.HELD.value)
            .values(payload=dict(payload), hold=[dict(v) for v in hold], updated_at=now)
        )
        async with self._db.tx(conn) as c:
            return (await c.execute(stmt)).rowcount == 1

    async def get(self, item_id: str, *, conn: AsyncConnection | None = None) -> OutboxItem:
        async with self._db.tx(conn, single=True, read=True) as c:
            row = (await c.execute(_GET, {"id": item_id})).mappings().first()
        if row is None:
            raise NotFoundInStoreError(f"no outbox item {item_id!r}")
        return OutboxItem.from_row(row)

    async def find(self, *, kind: str, item_key: str) -> list[OutboxItem]:
        """Items carrying record ``item_key`` of ``kind``, oldest first (any state)."""
        async with self._db.tx(single=True, read=True) as c:
            rows = (await c.execute(_FIND, {"kind": kind, "item_key": item_key})).mappings().all()
        return [OutboxItem.from_row(r) for r in rows]

    async def latest(
        self,
        *,
        kind: str,
        organization: str,
        include_unowned: bool = False,
        submitted_by: str | None = None,
        limit: int = 200,
    ) -> list[OutboxItem]:
        """The newest ``limit`` items of ``kind`` that belong to ``organization`` (and were
        submitted by ``submitted_by``), newest first: the pages' "my notes" and sessions."""
        owned = outbox.c.organization == organization
        stmt = (
            select(outbox)
            .where(
                outbox.c.kind == kind,
                or_(owned, outbox.c.organization.is_(None)) if include_unowned else owned,
            )
            .order_by(outbox.c.seq.desc())
            .limit(limit)
        )
        if submitted_by is not None:
            stmt = stmt.where(outbox.c.submitted_by == submitted_by)
        async with self._db.tx() as c:
            rows = (await c.execute(stmt)).mappings().all()
        return [OutboxItem.from_row(r) for r in rows]

    async def list(
        self,
        *,
        states: Iterable[OutboxState] | None = None,
        endpoint: str | None = None,
        organization: str | None = None,
        include_unowned: bool = False,
        limit: int = 100,
        after_seq: int = 0,
    ) -> list[OutboxItem]:
        """Oldest first. ``organization``: only its items; ``include_unowned`` adds those written
        before migration 7 (no organization recorded)."""
        stmt = select(outbox).where(outbox.c.seq > after_seq)
        if organization is not None:
            owned = outbox.c.organization == organization
            stmt = stmt.where(or_(owned, outbox.c.organization.is_(None)) if include_unowned else owned)
        if states is not None:
            stmt = stmt.where(outbox.c.state.in_([OutboxState(s).value for s in states]))
        if endpoint is not None:
            stmt = stmt.where(outbox.c.endpoint == endpoint)
        stmt = stmt.order_by(outbox.c.seq).limit(limit)
        async with self._db.tx(single=True, read=True) as c:
            rows = (await c.execute(stmt)).mappings().all()
        return [OutboxItem.from_row(r) for r in rows]

    async def counts(self, *, endpoint: str | None = None) -> dict[str, int]:
        stmt = select(outbox.c.state, func.count()).group_by(outbox.c.state)
        if endpoint is not None:
            stmt = stmt.where(outbox.c.endpoint == endpoint)
        async with self._db.tx(single=True, read=True) as c:
            rows = (await c.execute(stmt)).all()
        out = {s.value: 0 for s in OutboxState}
        out.update({str(state): int(n) for state, n in rows})
        return out

    async def retry(self, item_ids: Sequence[str] | None, *, now: datetime) -> int:
        """Operator: put dead items (all of them when ``item_ids`` is None) back in the queue.

        Attempts restart at zero so the full retry schedule applies again.
        """
        stmt = update(outbox).where(outbox.c.state == OutboxState.DEAD.value)
        if item_ids is not None:
            stmt = stmt.where(outbox.c.id.in_(list(item_ids)))
        stmt = stmt.values(state=OutboxState.QUEUED.value, attempts=0, next_attempt_at=now, updated_at=now)
        async with self._db.tx() as c:
            return int((await c.execute(stmt)).rowcount)

    async def expedite(self, *, endpoint: str, now: datetime) -> int:
        """Make every queued item for ``endpoint`` due now (the endpoint is answering again)."""
        stmt = (
            update(outbox)
            .where(
                outbox.c.endpoint == endpoint,
                outbox.c.state == OutboxState.QUEUED.value,
                outbox.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        async with self._db.tx() as c:
            return int((await c.execute(stmt)).rowcount)

    async def next_due(self, *, endpoint: str | None = None) -> datetime | None:
        """The earliest ``next_attempt_at`` of queued items (to sleep until then)."""
        stmt = select(func.min(outbox.c.next_attempt_at)).where(outbox.c.state == OutboxState.QUEUED.value)
        if endpoint is not None:
            stmt = stmt.where(outbox.c.endpoint == endpoint)
        async with self._db.tx(single=True, read=True) as c:
            value: datetime | None = (await c.execute(stmt)).scalar()  # min() keeps the column type
        return value

    async def purge(self, *, states: Iterable[OutboxState], older_than: datetime) -> int:
        """Operator: delete finished items last changed before ``older_than``. Pending work is kept."""
        wanted = [OutboxState(s).value for s in states]
        if any(s in PENDING or s == OutboxState.HELD.value for s in wanted):
            raise InputError("state", "only delivered or dead items can be purged")
        stmt = delete(outbox).where(outbox.c.state.in_(wanted), outbox.c.updated_at < older_than)
        async with self._db.tx() as c:
            return int((await c.execute(stmt)).rowcount)
