"""The billing ledger and stored warnings (migration 6), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import delete, text

from bridge.store import Store
from bridge.store.migrations import migrate
from bridge.store.schema import schema_migrations

T0 = datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
WARN = {"rule": "billing.zero-units", "severity": "warn", "message": "under one unit"}


async def _session(store: Store, enc: str, day: date, units: int, *, peer: str = "peer-1") -> str:
    item = await store.outbox.enqueue(
        kind="encounter", endpoint="clinic", partition_key=f"p-{enc}", item_key=enc, payload={}, now=T0
    )
    await store.billing.record(
        encounter_id=enc,
        submission_id=item.id,
        participant_id="pt-1",
        peer_id=peer,
        service_date=day,
        billable_units=units,
        now=T0,
    )
    return item.id


async def test_units_in_a_window(store: Store) -> None:
    await _session(store, "e1", date(2026, 3, 1), 4)
    await _session(store, "e2", date(2026, 3, 2), 6, peer="peer-2")
    await _session(store, "e3", date(2026, 3, 3), 8)
    units = store.billing.units
    assert await units(participant_id="pt-1", since=date(2026, 3, 1), until=date(2026, 3, 3)) == 18
    assert await units(participant_id="pt-1", since=date(2026, 3, 2), until=date(2026, 3, 2)) == 6
    assert (
        await units(participant_id="pt-1", since=date(2026, 3, 1), until=date(2026, 3, 3), peer_id="peer-1")
        == 12
    )
    assert (
        await units(
            participant_id="pt-1", since=date(2026, 3, 1), until=date(2026, 3, 3), exclude_encounter="e3"
        )
        == 10
    )
    assert await units(participant_id="pt-2", since=date(2026, 3, 1), until=date(2026, 3, 3)) == 0

    # a re-sent session replaces its row; a dead-lettered one was never billed
    await _session(store, "e3", date(2026, 3, 3), 2)
    [claimed] = await store.outbox.claim(owner="w", now=T0, lease_seconds=30, limit=1, endpoint="clinic")
    assert claimed.item_key == "e1"
    assert await store.outbox.mark_dead(claimed.id, owner="w", now=T0, error="refused")
    assert await units(participant_id="pt-1", since=date(2026, 3, 1), until=date(2026, 3, 3)) == 8


async def test_warnings_are_stored_with_the_item(store: Store) -> None:
    item = await store.outbox.enqueue(
        kind="encounter",
        endpoint="clinic",
        partition_key="p",
        item_key="e",
        payload={},
        now=T0,
        warnings=[WARN],
    )
    assert (await store.outbox.get(item.id)).warnings == [WARN]


async def test_migration_6_upgrades_an_older_database(store: Store) -> None:
    """A store at version 5 (no ``warnings`` column, no ledger) is upgraded in place, keeping its rows."""
    kept = await store.outbox.enqueue(
        kind="note", endpoint="clinic", partition_key="p", item_key="n-old", payload={}, now=T0
    )
    async with store.transaction() as conn:
        await conn.execute(text("DROP TABLE billing_ledger"))
        await conn.execute(text("ALTER TABLE outbox DROP COLUMN warnings"))
        await conn.execute(delete(schema_migrations).where(schema_migrations.c.version == 6))
    async with store.transaction() as conn:
        assert await migrate(conn) == [6]
    assert (await store.outbox.get(kept.id)).warnings is None
    await _session(store, "e-new", date(2026, 3, 1), 3)
    assert (
        await store.billing.units(participant_id="pt-1", since=date(2026, 3, 1), until=date(2026, 3, 1)) == 3
    )
