"""The store's cost per statement and per transaction on SQLite, beside aiosqlite alone.

    .venv/bin/python bench/store.py [--n 300]

Baseline in the same run: one ``aiosqlite`` call per statement (``Connection.execute``, the
driver with nothing above it). Then the bridge's ``Database`` (SQLAlchemy over the one-trip cursor
of ``bridge/store/sqlite_driver.py``), and SQLAlchemy's own aiosqlite adapter for comparison:
``SELECT 1`` per statement, a transaction of five 500-byte inserts (plain and durable), an empty
transaction. Prints milliseconds and the ratio to the baseline statement.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.store import engine


async def _baseline(path: Path, n: int) -> float:
    async with aiosqlite.connect(path) as db:
        t = time.perf_counter()
        for _ in range(n):
            await db.execute("SELECT 1")
        return (time.perf_counter() - t) / n * 1000


async def _measure(db: Any, n: int) -> dict[str, float]:
    async with db.tx() as c:
        await c.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"))
    out: dict[str, float] = {}
    t = time.perf_counter()
    async with db.tx() as c:
        for _ in range(n):
            await c.execute(text("SELECT 1"))
    out["SELECT 1 (per statement)"] = (time.perf_counter() - t) / n * 1000
    for durable in (False, True):
        t = time.perf_counter()
        for _ in range(n):
            async with db.tx(durable=durable) as c:
                for _ in range(5):
                    await c.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": "x" * 500})
        out[f"5 inserts, {'durable' if durable else 'plain'} (per transaction)"] = (
            (time.perf_counter() - t) / n * 1000
        )
    t = time.perf_counter()
    for _ in range(n):
        async with db.tx():
            pass
    out["empty transaction"] = (time.perf_counter() - t) / n * 1000
    return out


async def main(n: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    base = await _baseline(work / "base.db", n)
    bridge = await engine.open_database(f"sqlite+aiosqlite:///{work / 'bridge.db'}")
    try:
        ours = await _measure(bridge, n)
    finally:
        await bridge.dispose()
    # the same Database with SQLAlchemy's stock adapter (what the bridge used before)
    stock_module = engine.sqlite_driver.dbapi
    engine.sqlite_driver.dbapi = lambda: None  # type: ignore[assignment,return-value]
    try:
        stock = await engine.open_database(f"sqlite+aiosqlite:///{work / 'stock.db'}")
    finally:
        engine.sqlite_driver.dbapi = stock_module
    try:
        theirs = await _measure(stock, n)
    finally:
        await stock.dispose()
    print(f"{n} rounds each; baseline: aiosqlite execute('SELECT 1') {base:.3f} ms")
    print(f"{'':44} {'bridge (one trip)':>20} {'stock adapter':>16}")
    for k in ours:
        mine, stock_ms = ours[k], theirs[k]
        print(f"{k:44} {mine:8.3f} ms ({mine / base:5.1f}x) {stock_ms:8.3f} ms ({stock_ms / base:5.1f}x)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=300)
    asyncio.run(main(ap.parse_args().n))
