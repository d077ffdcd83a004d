"""Exchange fixtures: the real sandbox EHR (from tests/conftest.py), a real store (SQLite, and
PostgreSQL where parametrized), the real rule files and mappers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.inbound import InboundSettings
from bridge.exchange.outbound import OutboundSettings
from bridge.exchange.wiring import ExchangeService
from bridge.roles import Policy, load_policy
from bridge.store import Store, open_store
from bridge_dev.stores import drop_schema, pg_url, temp_schema_name

from .support import FAST, RULES, ServiceFactory, require_postgres


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(RULES, "TX")


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
    yield s
    await s.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        s = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
        yield s
        await s.close()
        return
    await require_postgres()
    schema = temp_schema_name()
    s = await open_store(pg_url(), schema=schema)
    yield s
    await s.close()
    await drop_schema(schema)


@pytest.fixture
async def make_service(policy: Policy) -> AsyncIterator[ServiceFactory]:
    made: list[ExchangeService] = []

    async def make(
        settings: Settings,
        store: Store,
        directory: InMemoryDirectory,
        *,
        outbound: OutboundSettings = FAST,
        inbound: InboundSettings | None = None,
        **kw: Any,
    ) -> ExchangeService:
        svc = await ExchangeService.open(
            settings,
            directory=directory,
            policy=policy,
            store=store,
            outbound=outbound,
            inbound=inbound or InboundSettings(),
            **kw,
        )
        made.append(svc)
        return svc

    yield make
    for svc in made:
        await svc.stop()
        for c in svc.clients.values():
            await c.aclose()
