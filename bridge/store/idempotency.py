"""Idempotency keys for API submissions: a retried POST answers the first submission's tracking id.

Keys are scoped by caller (two peer apps may pick the same key). Reusing a key for a different
request body is a client bug and answers an :class:`IdempotencyConflictError`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.errors import IdempotencyConflictError
from bridge.store.engine import Database
from bridge.store.schema import idempotency_keys


def request_hash(body: Any) -> str:
    """A stable hash of a JSON-able request body (key order does not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def lookup(
        self, scope: str, key: str, body_hash: str, *, conn: AsyncConnection | None = None
    ) -> str | None:
        """The submission id recorded for ``(scope, key)``, or None; refuses a different body."""
        async with self._db.tx(conn) as c:
            row = (
                (
                    await c.execute(
                        select(idempotency_keys).where(
                            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        if row["request_hash"] != body_hash:
            raise IdempotencyConflictError("Idempotency-Key already used for a different request")
        return str(row["submission_id"])

    async def record(
        self,
        scope: str,
        key: str,
        body_hash: str,
        submission_id: str,
        *,
        now: datetime,
        conn: AsyncConnection,
    ) -> None:
        """Record inside the caller's transaction (the one that queues the submission)."""
        await conn.execute(
            insert(idempotency_keys).values(
                scope=scope, key=key, request_hash=body_hash, submission_id=submission_id, created_at=now
            )
        )
