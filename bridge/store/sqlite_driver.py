"""SQLAlchemy's aiosqlite adapter with one trip to the driver's thread per statement.

aiosqlite runs each SQLite call on its own thread; SQLAlchemy's adapter makes four calls per
statement (open a cursor, execute, fetch the rows, close the cursor), each a hand-off to that
thread and back to the event loop. Under load each hand-off waits for both sides to be
scheduled, and a submission's dozen statements spent most of their time there (issue 15: 0.9 ms
per statement through SQLAlchemy against 0.1 ms for one aiosqlite call). :class:`OneTripCursor`
runs the four steps as one function on the thread and keeps what SQLAlchemy reads afterwards
(description, rows, rowcount, lastrowid).

It reaches one private attribute of aiosqlite, ``Connection._execute`` (queue a function for its
thread), the same queue SQLAlchemy's own adapter uses to set the isolation level.
``tests/store/test_sqlite_driver.py`` pins the behaviour the store relies on: rows, rowcount,
lastrowid, errors as SQLAlchemy's classes, many-row inserts and the transaction statements.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_


def _run(sql: str, parameters: Any, many: bool, conn: Any) -> tuple[Any, list[Any], int, Any]:
    """On the driver's thread: the statement, its rows and counters, the cursor closed."""
    cur = conn.cursor()
    try:
        if many:
            cur.executemany(sql, parameters)
        elif parameters is None:
            cur.execute(sql)
        else:
            cur.execute(sql, parameters)
        description = cur.description
        rows = cur.fetchall() if description else []
        return description, rows, cur.rowcount, cur.lastrowid
    finally:
        cur.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement, rows and close are one call on the driver's thread."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no driver cursor: it lives in _run
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: Any = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:  # nothing is open on the driver's side
        return None

    def close(self) -> None:
        self._rows.clear()

    def _trip(self, sql: str, parameters: Any, many: bool) -> None:
        conn = self._connection
        call: Callable[..., Any] = conn._execute
        try:
            description, rows, rowcount, lastrowid = await_(call(_run, sql, parameters, many, conn._conn))
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._description, self._rowcount, self._lastrowid = description, rowcount, lastrowid
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._trip(operation, parameters, False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        self._trip(operation, seq_of_parameters, True)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DB-API module SQLAlchemy wraps, handing out :class:`OneTripConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def dbapi() -> OneTripDBAPI:
    """The module to give ``create_async_engine(..., module=...)`` for a SQLite URL."""
    import sqlite3

    import aiosqlite

    return OneTripDBAPI(aiosqlite, sqlite3)
