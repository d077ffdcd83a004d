"""The inbox: referrals in the peer view, one row per (endpoint, Task), de-duplicated.

A notification, a catch-up poll and a repeated event can all bring the same Task: ``upsert`` keeps
the newest version and says whether anything changed, so callers audit and notify only once.
Version ids are opaque (UUIDs at some servers): versions are ordered by ``meta.lastUpdated``, then
``lastModified``, both compared as instants; by version id only where both are numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, case, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import Referral, ReferralStatus
from bridge.errors import NotFoundInStoreError
from bridge.store.engine import Database
from bridge.store.schema import inbox

_UNSAFE = re.compile(r"[^A-Za-z0-9\-.]")


def referral_id(endpoint: str, task_id: str) -> str:
    """A stable referral id in the FHIR id grammar: ``<endpoint>.<task id>``."""
    rid = _UNSAFE.sub("-", f"{endpoint}.{task_id}")
    return rid[:64]


def is_older(new: Referral, old: Referral) -> bool:
    """Whether ``new`` is known to be an older version of the Task than ``old`` (when nothing
    tells, it is not: a different copy is taken as the change it most likely is)."""
    for a, b in ((new.task_updated, old.task_updated), (new.last_modified, old.last_modified)):
        if a is not None and b is not None and a != b:
            return a < b
    v_new, v_old = new.task_version or "", old.task_version or ""
    if v_new.isdigit() and v_old.isdigit():
        return int(v_new) < int(v_old)
    return False


@dataclass(frozen=True)
class InboxEntry:
    referral: Referral
    received_at: datetime
    updated_at: datetime
    assignee: str | None = None  # the practitioner who accepted it


def _entry(row: Any) -> InboxEntry:
    return InboxEntry(
        referral=Referral.model_validate_json(json.dumps(row["referral"])),
        received_at=row["received_at"],
        updated_at=row["updated_at"],
        assignee=row["assignee"],
    )


class Inbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(self, ref: Referral, *, now: datetime, conn: AsyncConnection | None = None) -> bool:
        """Store ``ref``; True when it was new or newer than what we had."""
        data = json.loads(ref.model_dump_json())
        async with self._db.tx(conn) as c:
            inserted = await c.execute(
                self._db.insert_or_ignore(inbox).values(
                    id=ref.id,
                    endpoint=ref.endpoint,
                    task_id=ref.task_id,
                    task_version=ref.task_version,
                    status=ref.status.value,
                    last_modified=ref.last_modified,
                    referral=data,
                    received_at=now,
                    updated_at=now,
                )
            )
            if inserted.rowcount == 1:
                return True
            # already there (maybe just now, by another instance): lock it and keep the newest
            row = (
                (
                    await c.execute(
                        select(inbox)
                        .where(inbox.c.endpoint == ref.endpoint, inbox.c.task_id == ref.task_id)
                        .with_for_update()
                    )
                )
                .mappings()
                .one()
            )
            old = Referral.model_validate_json(json.dumps(row["referral"]))
            if is_older(ref, old) or data == row["referral"]:
                return False
            await c.execute(
                update(inbox)
                .where(inbox.c.id == row["id"])
                .values(
                    task_version=ref.task_version,
                    status=ref.status.value,
                    last_modified=ref.last_modified,
                    referral={**data, "id": row["id"]},
                    updated_at=now,
                )
            )
            return True

    async def assign(
        self, rid: str, assignee: str, *, now: datetime, conn: AsyncConnection | None = None
    ) -> None:
        """Record who took the referral on (the latest accept wins)."""
        async with self._db.tx(conn) as c:
            done = await c.execute(
                update(inbox).where(inbox.c.id == rid).values(assignee=assignee, updated_at=now)
            )
        if done.rowcount != 1:
            raise NotFoundInStoreError(f"no referral {rid!r}")

    async def get(self, rid: str, *, conn: AsyncConnection | None = None) -> InboxEntry:
        async with self._db.tx(conn) as c:
            row = (await c.execute(select(inbox).where(inbox.c.id == rid))).mappings().first()
        if row is None:
            raise NotFoundInStoreError(f"no referral {rid!r}")
        return _entry(row)

    async def find_task(self, endpoint: str, task_id: str) -> InboxEntry | None:
        async with self._db.tx() as c:
            row = (
                (
                    await c.execute(
                        select(inbox).where(inbox.c.endpoint == endpoint, inbox.c.task_id == task_id)
                    )
                )
                .mappings()
                .first()
            )
        return _entry(row) if row is not None else None

    async def list(
        self,
        *,
        statuses: list[ReferralStatus] | None = None,
        endpoint: str | None = None,
        limit: int = 100,
        offset: int = 0,
        first: Sequence[ReferralStatus] = (),
        containing: str | None = None,
    ) -> list[InboxEntry]:
        """Newest first; ``first``: referrals in these statuses before the others (open first);
        ``containing``: only referrals whose stored JSON contains these characters (any case), a
        cheap pre-filter for a search the caller then makes exact (a name)."""
        stmt = select(inbox)
        if containing:
            escaped = containing.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(cast(inbox.c.referral, String).ilike(f"%{escaped}%", escape="\\"))
        if statuses is not None:
            stmt = stmt.where(inbox.c.status.in_([s.value for s in statuses]))
        if endpoint is not None:
            stmt = stmt.where(inbox.c.endpoint == endpoint)
        order = [inbox.c.received_at.desc(), inbox.c.id]
        if first:
            order.insert(0, case((inbox.c.status.in_([s.value for s in first]), 0), else_=1))
        stmt = stmt.order_by(*order).limit(limit).offset(offset)
        async with self._db.tx() as c:
            rows = (await c.execute(stmt)).mappings().all()
        return [_entry(r) for r in rows]

    async def count(self, *, statuses: Sequence[ReferralStatus] | None = None) -> int:
        """How many referrals (of ``statuses``) the inbox holds: the pages' paging."""
        stmt = select(func.count()).select_from(inbox)
        if statuses is not None:
            stmt = stmt.where(inbox.c.status.in_([s.value for s in statuses]))
        async with self._db.tx() as c:
            return int((await c.execute(stmt)).scalar_one())
