"""The ``Store`` facade: one database, its repositories, and the transaction helper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from sqlalchemy import false
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.audit import AuditLog
from bridge.store.billing import BillingLedger
from bridge.store.engine import Database, open_database
from bridge.store.idempotency import IdempotencyKeys
from bridge.store.inbox import Inbox
from bridge.store.outbox import Outbox
from bridge.store.schema import sync_state
from bridge.store.sessions import WebSessions
from bridge.store.sync_state import SyncState


class Store:
    """Outbox, inbox, idempotency keys, audit log, sync state and browser sessions over one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.outbox = Outbox(db)
        self.inbox = Inbox(db)
        self.idempotency = IdempotencyKeys(db)
        self.audit = AuditLog(db)
        self.sync = SyncState(db)
        self.billing = BillingLedger(db)
        self.sessions = WebSessions(db)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.db.dialect

    @asynccontextmanager
    async def transaction(self, *, durable: bool = False) -> AsyncIterator[AsyncConnection]:
        """One transaction for several repository calls (pass it as ``conn=``). ``durable``: synced
        to disk before the commit returns (SQLite; PostgreSQL always is), for accepted work."""
        async with self.db.tx(durable=durable) as conn:
            yield conn

    async def check_writable(self) -> None:
        """Raise :class:`~bridge.errors.StoreError` unless a write can be made now (a read-only
        file or replica answers reads but refuses every submission): an update of no row, which
        still needs the write lock or a read-write transaction."""
        async with self.db.tx() as conn:
            await conn.execute(sync_state.update().where(false()).values(key=sync_state.c.key))

    async def close(self) -> None:
        await self.db.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def open_store(url: str, *, schema: str | None = None, pool_size: int = 10) -> Store:
    """Open (and migrate) the store at ``url``: ``sqlite+aiosqlite:///file.db`` or
    ``postgresql+asyncpg://user@host/db`` (``schema`` isolates a deployment or a test run)."""
    return Store(await open_database(url, schema=schema, pool_size=pool_size))
