"""Durable key/value state for the inbound side: poll cursors, subscription ids, event counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.engine import Database
from bridge.store.schema import sync_state


class SyncState:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str, *, conn: AsyncConnection | None = None) -> dict[str, Any] | None:
        async with self._db.tx(conn) as c:
            value = (await c.execute(select(sync_state.c.value).where(sync_state.c.key == key))).scalar()
        return dict(value) if value is not None else None

    async def put(
        self, key: str, value: dict[str, Any], *, now: datetime, conn: AsyncConnection | None = None
    ) -> None:
        async with self._db.tx(conn) as c:
            await c.execute(
                self._db.insert_or_ignore(sync_state).values(key=key, value=value, updated_at=now)
            )
            await c.execute(
                update(sync_state).where(sync_state.c.key == key).values(value=value, updated_at=now)
            )
