"""Helpers for tests and benchmarks that need a throwaway store (not used at run time).

PostgreSQL runs get their own schema (``pb_<random>``) so parallel runs on one database don't
collide; ``drop_schema`` removes it afterwards.
"""

from __future__ import annotations

import os
import uuid

import asyncpg  # type: ignore[import-untyped]

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    """``$BRIDGE_TEST_PG_URL`` or the CI database (127.0.0.1:5432, trust auth, db ``test``)."""
    return os.environ.get("BRIDGE_TEST_PG_URL", DEFAULT_PG_URL)


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def pg_reachable(url: str | None = None) -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        conn = await asyncpg.connect(_dsn(url or pg_url()), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def require_postgres() -> None:
    """In a test: skip when PostgreSQL is unreachable, but fail with ``CI=true``, where it must be."""
    import pytest  # only tests call this; the bridge does not depend on pytest

    reason = await pg_reachable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL at {pg_url()} is unreachable in CI: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


def temp_schema_name() -> str:
    return f"pb_{uuid.uuid4().hex[:16]}"


async def drop_schema(schema: str, url: str | None = None) -> None:
    conn = await asyncpg.connect(_dsn(url or pg_url()), timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
