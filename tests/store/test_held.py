"""Held outbox items (a note kept back until co-signed or escalated), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, text

from bridge.errors import InputError
from bridge.store import OutboxState, Store, open_store
from bridge.store.schema import schema_migrations

T0 = datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
REASON = {"rule": "supervision.cosign", "severity": "hold", "message": "needs a co-sign", "evidence": None}


async def _put(store: Store, key: str, *, held: bool, partition: str = "p-1") -> str:
    item = await store.outbox.enqueue(
        kind="note",
        endpoint="clinic",
        partition_key=partition,
        item_key=key,
        payload={"note": {"id": key}},
        now=T0,
        held=[REASON] if held else None,
    )
    return item.id


async def _claim_all(store: Store, at: datetime = T0) -> list[str]:
    return [i.id for i in await store.outbox.claim(owner="w", now=at, lease_seconds=30, limit=50)]


async def test_held_items_are_never_claimed_and_do_not_block_their_partition(store: Store) -> None:
    held = await _put(store, "n-held", held=True)
    later = await _put(store, "n-later", held=False)  # same participant and endpoint, submitted after
    item = await store.outbox.get(held)
    assert item.state is OutboxState.HELD and item.hold == [REASON]
    assert await _claim_all(store, T0 + timedelta(days=30)) == [later]
    assert (await store.outbox.counts())["held"] == 1
    assert [i.id for i in await store.outbox.list(states=[OutboxState.HELD])] == [held]


async def test_release_queues_once_with_the_new_payload(store: Store) -> None:
    held = await _put(store, "n-1", held=True)
    at = T0 + timedelta(hours=2)
    assert await store.outbox.release(held, now=at, payload={"note": {"id": "n-1", "cosigned": True}})
    # a second co-signer racing the first finds it no longer held
    assert not await store.outbox.release(held, now=at, payload={"note": {"id": "n-1"}})
    item = await store.outbox.get(held)
    assert item.state is OutboxState.QUEUED and item.hold is None
    assert item.payload["note"]["cosigned"] is True and item.next_attempt_at == at
    assert await _claim_all(store, at) == [held]


async def test_rehold_keeps_it_held_with_the_remaining_reasons(store: Store) -> None:
    held = await _put(store, "n-2", held=True)
    remaining = [{**REASON, "rule": "content.risk-of-harm"}]
    assert await store.outbox.rehold(held, now=T0, payload={"note": {"id": "n-2", "v": 2}}, hold=remaining)
    item = await store.outbox.get(held)
    assert item.state is OutboxState.HELD and item.hold == remaining and item.payload["note"]["v"] == 2
    assert await _claim_all(store, T0 + timedelta(days=1)) == []
    queued = await _put(store, "n-3", held=False, partition="p-9")
    assert not await store.outbox.rehold(queued, now=T0, payload={}, hold=remaining)


async def test_held_items_cannot_be_purged(store: Store) -> None:
    with pytest.raises(InputError) as info:
        await store.outbox.purge(states=["held"], older_than=T0)
    assert info.value.field == "state"


async def test_summary_names_the_hold_rules_not_the_payload(store: Store) -> None:
    item = await store.outbox.get(await _put(store, "n-4", held=True))
    summary = item.summary()
    assert summary["state"] == "held" and summary["hold_rules"] == ["supervision.cosign"]
    assert "payload" not in summary


async def test_migration_5_adds_the_column_to_an_older_database(store: Store) -> None:
    """A store at version 4 (no ``hold`` column) is upgraded in place, keeping its rows."""
    kept = await _put(store, "n-old", held=False)
    async with store.transaction() as conn:
        await conn.execute(text("DROP INDEX outbox_held"))
        await conn.execute(text("ALTER TABLE outbox DROP COLUMN hold"))
        await conn.execute(delete(schema_migrations).where(schema_migrations.c.version == 5))
    from bridge.store.migrations import migrate

    async with store.transaction() as conn:
        assert await migrate(conn) == [5]
    assert (await store.outbox.get(kept)).hold is None
    held = await _put(store, "n-new", held=True)
    assert (await store.outbox.get(held)).hold == [REASON]


async def test_a_fresh_database_migrates_to_the_latest_version(tmp_path: object) -> None:
    s = await open_store(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    try:
        held = await _put(s, "n-f", held=True)
        assert (await s.outbox.get(held)).state is OutboxState.HELD
    finally:
        await s.close()
