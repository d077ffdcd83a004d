"""The append-only audit log: who did or saw what, when, and from where.

Only ``append`` and reads exist here, and the database refuses UPDATE/DELETE on the table
(migration 2). ``detail`` holds codes and ids, never PHI (no names, no note text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.engine import Database
from bridge.store.schema import PRACTITIONER, audit_log

# built once: constructing a statement costs more Python than running it (issue 15's profile)
_APPEND = insert(audit_log)

__all__ = ["PRACTITIONER", "AuditEntry", "AuditLog"]


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    outcome: str
    source: str | None
    detail: dict[str, Any] | None


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self,
        *,
        actor: str,
        action: str,
        subject: str,
        at: datetime,
        outcome: str = "ok",
        source: str | None = None,
        detail: Mapping[str, Any] | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        row = {
            "at": at,
            "actor": actor,
            "action": action,
            "subject": subject,
            "outcome": outcome,
            "source": source,
            "detail": dict(detail) if detail is not None else None,
        }
        async with self._db.tx(conn) as c:
            await c.execute(_APPEND, row)

    async def append_many(self, entries: Sequence[Mapping[str, Any]], *, conn: AsyncConnection) -> None:
        """Several entries (``append``'s keyword arguments each) in one statement on ``conn``: the
        outbound worker records a group of deliveries in one transaction."""
        if not entries:
            return
        rows = [
            {
                "at": e["at"],
                "actor": e["actor"],
                "action": e["action"],
                "subject": e["subject"],
                "outcome": e.get("outcome", "ok"),
                "source": e.get("source"),
                "detail": dict(e["detail"]) if e.get("detail") is not None else None,
            }
            for e in entries
        ]
        async with self._db.tx(conn) as c:
            await c.execute(insert(audit_log), rows)

    async def entries(
        self, *, subject: str | None = None, action: str | None = None, after_seq: int = 0, limit: int = 1000
    ) -> list[AuditEntry]:
        stmt = select(audit_log).where(audit_log.c.seq > after_seq)
        if subject is not None:
            stmt = stmt.where(audit_log.c.subject == subject)
        if action is not None:
            stmt = stmt.where(audit_log.c.action == action)
        stmt = stmt.order_by(audit_log.c.seq).limit(limit)
        async with self._db.tx() as c:
            rows = (await c.execute(stmt)).mappings().all()
        return [AuditEntry(**dict(r)) for r in rows]
