"""Store fixtures: every behaviour test runs on SQLite and on PostgreSQL.

PostgreSQL tests skip when it is unreachable, except with ``CI=true``, where they fail.
Each PostgreSQL test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.store import Store, open_store
from bridge_dev.stores import drop_schema, pg_url, require_postgres, temp_schema_name


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
        try:
            yield s
        finally:
            await s.close()
        return
    await require_postgres()
    schema = temp_schema_name()
    s = await open_store(pg_url(), schema=schema)
    try:
        yield s
    finally:
        await s.close()
        await drop_schema(schema)
