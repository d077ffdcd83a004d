"""Billing ledger: the billable units accepted per session, so caps see what was already billed.

One row per session record (a re-submitted session replaces its row); a session whose outbox item
was dead-lettered no longer counts (it was never billed). Dates are ``YYYY-MM-DD`` text, which
compares the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.engine import Database
from bridge.store.outbox import OutboxState
from bridge.store.schema import billing_ledger, outbox


def _units(by_peer: bool, excluding: bool) -> Select[Any]:
    stmt = (
        select(func.coalesce(func.sum(billing_ledger.c.billable_units), 0))
        .select_from(billing_ledger.join(outbox, outbox.c.id == billing_ledger.c.submission_id))
        .where(
            billing_ledger.c.participant_id == bindparam("participant"),
            billing_ledger.c.service_date >= bindparam("since"),
            billing_ledger.c.service_date <= bindparam("until"),
            outbox.c.state != OutboxState.DEAD.value,
        )
    )
    if by_peer:
        stmt = stmt.where(billing_ledger.c.peer_id == bindparam("peer"))
    if excluding:
        stmt = stmt.where(billing_ledger.c.encounter_id != bindparam("exclude"))
    return stmt


# built once: constructing a statement costs more Python than running it (issue 15's profile)
_UNITS = {(p, e): _units(p, e) for p in (False, True) for e in (False, True)}
_FORGET = delete(billing_ledger).where(billing_ledger.c.encounter_id == bindparam("encounter"))
_RECORD = insert(billing_ledger)


class BillingLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        encounter_id: str,
        submission_id: str,
        participant_id: str,
        peer_id: str,
        service_date: dt.date,
        billable_units: int,
        now: dt.datetime,
        conn: AsyncConnection | None = None,
    ) -> None:
        """Record (or replace) the session's billable units; pass ``conn`` to make it part of the
        submission's transaction."""
        row = {
            "encounter_id": encounter_id,
            "submission_id": submission_id,
            "participant_id": participant_id,
            "peer_id": peer_id,
            "service_date": service_date.isoformat(),
            "billable_units": billable_units,
            "recorded_at": now,
        }
        async with self._db.tx(conn) as c:
            await c.execute(_FORGET, {"encounter": encounter_id})
            await c.execute(_RECORD, row)

    async def units(
        self,
        *,
        participant_id: str,
        since: dt.date,
        until: dt.date,
        peer_id: str | None = None,
        exclude_encounter: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> int:
        """Billable units for ``participant_id`` (and ``peer_id``, when given) with a service date
        in ``[since, until]``, leaving out ``exclude_encounter`` (the session being judged). Pass
        ``conn`` (after :meth:`lock`) to read them in the transaction that records the next row."""
        stmt = _UNITS[(peer_id is not None, exclude_encounter is not None)]
        params = {
            "participant": participant_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "peer": peer_id,
            "exclude": exclude_encounter,
        }
        async with self._db.tx(conn) as c:
            return int((await c.execute(stmt, params)).scalar_one())

    async def lock(self, participant_id: str, *, conn: AsyncConnection) -> None:
        """Serialize check-and-record of one participant's units until ``conn`` commits, so two
        sessions submitted at once are not both judged without the other.

        PostgreSQL: a transaction-scoped advisory lock on the participant (a row lock cannot
        cover rows that do not exist yet); reads after it see the other session's committed row
        (READ COMMITTED takes a new snapshot per statement). SQLite: nothing to do, every
        transaction is a write transaction (``BEGIN IMMEDIATE``), one at a time."""
        if self._db.dialect != "postgresql":
            return
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"billing:{participant_id}"},
        )
