"""An outbox item whose stored payload no longer reads as a record (queued by an older version, or
damaged) is dead-lettered once, naming the error type: it is not left in ``sending`` to be claimed
and fail again every time its lease runs out."""

from __future__ import annotations

from bridge.store import OutboxState, Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, settings_for


async def test_an_unreadable_payload_is_dead_lettered_once(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    item = await sqlite_store.outbox.enqueue(
        kind="encounter",
        endpoint="clinic",
        partition_key="p-old",
        item_key="enc-old",
        payload={"encounter": {"id": "enc-old", "location_name": "Marisol's kitchen"}},
        now=svc.clock(),
    )
    await svc.worker.drain("clinic")
    dead = await sqlite_store.outbox.get(item.id)
    assert dead.state is OutboxState.DEAD, dead.state
    assert dead.attempts == 1
    assert dead.last_error == "ValidationError"  # the type only: pydantic's message quotes the input
    [entry] = await sqlite_store.audit.entries(action="dead-letter")
    assert entry.subject == item.id and "Marisol" not in str(entry.detail)
