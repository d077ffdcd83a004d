"""A failing poll backs off (issue 10, finding 8): with an unwritable store the poller searched the
EHR every half second (36 searches in 20 s), because its next poll advanced on success only.

The inbound sync is the real one (sandbox EHR, SQLite); its ``poll`` is replaced by one that fails
as a read-only store does, and counted: the schedule of the loop is what is under test."""

from __future__ import annotations

import asyncio

from bridge.errors import StoreError
from bridge.store import Store
from bridge_dev.sandbox import Sandbox
from tests.exchange.support import ServiceFactory, World, settings_for


async def test_a_failing_poll_is_retried_with_backoff_not_every_half_second(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    sync = svc.inbound
    attempts = 0

    async def failing_poll(endpoint: str, **_: object) -> int:
        nonlocal attempts
        attempts += 1
        raise StoreError("attempt to write a readonly database")

    async def subscribed(endpoint: str) -> None:
        return None

    sync.poll = failing_poll  # type: ignore[method-assign]
    sync.subscribe = subscribed  # type: ignore[method-assign]
    watch = asyncio.create_task(sync._watch("clinic"))
    try:
        await asyncio.sleep(2.2)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
    # the first attempt, then a wait of 2.5-5 s before the next: not one every 0.5 s
    assert attempts == 1
