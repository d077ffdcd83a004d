"""The one-trip SQLite cursor (bridge.store.sqlite_driver) behaves as SQLAlchemy's own adapter for
what the store uses, on a real SQLite file; and a reader does not queue behind a writer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.errors import StoreError
from bridge.store.engine import Database, open_database
from bridge.store.sqlite_driver import OneTripCursor


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    d = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with d.tx() as c:
        await c.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    try:
        yield d
    finally:
        await d.dispose()


async def test_the_engine_uses_the_one_trip_cursor(db: Database) -> None:
    async with db.engine.connect() as c:
        raw = await c.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]


async def test_rows_rowcount_lastrowid_and_many(db: Database) -> None:
    async with db.tx() as c:
        first = await c.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "a"})
        assert first.lastrowid == 1
        await c.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "b"}, {"v": "c"}])  # executemany
        changed = await c.execute(text("UPDATE t SET v = v || '!' WHERE id > 1"))
        assert changed.rowcount == 2
        back = await c.execute(text("INSERT INTO t (v) VALUES ('d') RETURNING id, v"))
        assert back.mappings().one() == {"id": 4, "v": "d"}
    async with db.tx(read=True) as c:
        rows = (await c.execute(text("SELECT id, v FROM t ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, "a"), (2, "b!"), (3, "c!"), (4, "d")]
        assert (await c.execute(text("SELECT v FROM t WHERE id = 99"))).first() is None


async def test_a_constraint_error_rolls_back_and_is_a_store_error(db: Database) -> None:
    with pytest.raises(StoreError, match="IntegrityError"):
        async with db.tx() as c:
            await c.execute(text("INSERT INTO t (v) VALUES ('same')"))
            await c.execute(text("INSERT INTO t (v) VALUES ('same')"))
    async with db.tx(read=True) as c:  # the first insert went with the transaction
        assert (await c.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_a_reader_reads_a_snapshot_while_a_writer_holds_the_lock(db: Database) -> None:
    async with db.tx() as c:
        await c.execute(text("INSERT INTO t (v) VALUES ('committed')"))
    writing, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.tx(durable=True) as c:
            await c.execute(text("INSERT INTO t (v) VALUES ('pending')"))
            writing.set()
            await release.wait()

    task = asyncio.create_task(writer())
    await writing.wait()
    # the writer holds this process's writer lock and SQLite's: a read still answers, from the
    # last commit, without waiting for either
    async with asyncio.timeout(5):
        async with db.tx(single=True, read=True) as c:
            seen = [r[0] for r in (await c.execute(text("SELECT v FROM t ORDER BY id"))).all()]
    assert seen == ["committed"]
    release.set()
    await task
    async with db.tx(read=True) as c:
        assert (await c.execute(text("SELECT count(*) FROM t"))).scalar_one() == 2
