"""Opening the store: one SQLAlchemy async engine over aiosqlite or asyncpg, one code path.

SQLite (default): one file in WAL mode; every transaction starts ``BEGIN IMMEDIATE`` so two
writers queue on the busy timeout instead of failing a read-to-write upgrade, and durable
transactions (a 202 answered to a peer) are synced with ``synchronous=FULL`` (see ``Database.tx``).
PostgreSQL: ``schema`` (optional) isolates one deployment or one test run; claims use
``FOR UPDATE SKIP LOCKED`` (see :mod:`bridge.store.outbox`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from bridge.errors import ConfigError, StoreError
from bridge.store import sqlite_driver
from bridge.store.migrations import migrate

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_READ_ONLY = "bridge_read_only"  # execution option: this SQLite transaction only reads


def normalize_url(url: str) -> str:
    """Accept plain ``sqlite:///`` / ``postgresql://`` URLs and pick the async driver."""
    if url.startswith("sqlite:"):
        url = "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    elif url.startswith(("postgresql:", "postgres:")):
        url = "postgresql+asyncpg:" + url.split(":", 1)[1]
    if not url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
        raise ConfigError("store.url", "must be a sqlite+aiosqlite:/// or postgresql+asyncpg:// URL")
    return url


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # take transaction control away from the driver so "begin" below decides the mode
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # FULL per durable transaction, see tx()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # a reader takes a snapshot and no lock (WAL: readers and the writer do not wait for each other)
        _driver_exec(conn, "BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


def _driver_exec(sync_conn: Any, sql: str) -> None:
    """Run ``sql`` on aiosqlite's connection directly: one trip to its thread, where a DBAPI
    cursor costs three (open, execute, close). Each trip is a thread switch, and on a busy machine
    those switches were most of the store's CPU time per transaction."""
    driver = sync_conn.connection.dbapi_connection
    inner = getattr(driver, "_connection", None)
    if inner is None or not hasattr(inner, "execute"):  # not the aiosqlite adapter: the DBAPI way
        cur = driver.cursor()
        cur.execute(sql)
        cur.close()
        return
    await_(inner.execute(sql))


def _set_synchronous(sync_conn: Any, level: str) -> None:
    # on the DBAPI connection: through SQLAlchemy it would open a transaction first, and SQLite
    # refuses to change the safety level inside one
    _driver_exec(sync_conn, f"PRAGMA synchronous={level}")


class Database:
    """An engine plus the transaction helper every repository uses."""

    def __init__(self, engine: AsyncEngine, schema: str | None) -> None:
        self.engine = engine
        self.schema = schema
        # SQLite has one writer at a time; a waiting writer polls with sleeps of up to 100 ms
        # (busy_timeout). Queueing this process's transactions here instead keeps that for the
        # rare cross-process case (the CLI beside a running bridge) and costs nothing on PostgreSQL.
        self._local_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def tx(
        self,
        conn: AsyncConnection | None = None,
        *,
        durable: bool = False,
        single: bool = False,
        read: bool = False,
    ) -> AsyncIterator[AsyncConnection]:
        """Use ``conn`` (the caller's transaction) or open, commit and close a new one.

        ``durable``: on SQLite, this commit is synced to disk (``synchronous=FULL``) before it
        returns: for work accepted from a peer (the 202 is a promise). Other commits (claims,
        delivery bookkeeping) use ``NORMAL``: in WAL mode they survive a crash of the process, and
        after a power cut at worst an item is sent again, which the conditional creates absorb.
        PostgreSQL commits are always durable.

        ``single``: the caller runs one statement (atomic on its own), so on PostgreSQL it runs
        without ``BEGIN`` and ``COMMIT``, two round trips fewer (a claim, a lease renewal, a read).
        SQLite keeps its ``BEGIN IMMEDIATE`` (the writer lock orders this process's writers).

        ``read``: the caller only reads. On SQLite it does not queue behind this process's writers:
        a plain ``BEGIN`` reads a snapshot while a writer works (WAL mode). On PostgreSQL it is an
        ordinary transaction (``single`` as well: no ``BEGIN`` when it is one statement).

        SQLAlchemy and driver errors become :class:`StoreError` here; their text can carry bound
        parameters (PHI), so only the class names are kept in the message.
        """
        if conn is not None:
            yield conn
            return
        try:
            if self._local_writer is None and single:
                async with self.engine.connect() as new:
                    yield await new.execution_options(isolation_level="AUTOCOMMIT")
            elif self._local_writer is None:
                async with self.engine.begin() as new:
                    yield new
            elif read:
                async with self.engine.connect() as new:
                    reader = await new.execution_options(**{_READ_ONLY: True})
                    async with reader.begin():
                        yield reader
            else:
                async with self._local_writer, self.engine.connect() as new:
                    if durable:
                        await new.run_sync(_set_synchronous, "FULL")
                    try:
                        async with new.begin():
                            yield new
                    finally:
                        if durable:
                            await new.run_sync(_set_synchronous, "NORMAL")
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            detail = f"{type(exc).__name__}" + (f" ({type(orig).__name__})" if orig is not None else "")
            raise StoreError(f"store operation failed: {detail}") from exc
        except OSError as exc:
            raise StoreError(f"store unreachable: {exc.strerror or type(exc).__name__}") from exc

    def insert_or_ignore(self, table: Table) -> Any:
        """``INSERT … ON CONFLICT DO NOTHING`` for this database (same syntax, dialect constructs):
        two instances racing to record the same thing must not fail the loser's transaction."""
        if self.dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    async def dispose(self) -> None:
        await self.engine.dispose()


async def open_database(url: str, *, schema: str | None = None, pool_size: int = 10) -> Database:
    """Create the engine, the PostgreSQL schema if asked, and apply pending migrations."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError("store.url", "not a valid database URL") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if schema is not None:
            raise ConfigError("store.schema", "schemas are for PostgreSQL; use another SQLite file instead")
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["module"] = sqlite_driver.dbapi()  # one trip to the driver's thread per statement
    else:
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ConfigError("store.schema", "must be a lower-case SQL identifier")
        if schema is not None:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _sqlite_pragmas(engine)
    db = Database(engine, schema)
    try:
        if schema is not None:
            async with db.tx() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        async with db.tx() as conn:
            await migrate(conn)
    except BaseException:
        await engine.dispose()
        raise
    return db
