"""Inbox, idempotency keys, audit log, sync state and migrations on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bridge.domain import Referral, ReferralStatus
from bridge.errors import IdempotencyConflictError, StoreError
from bridge.store import Store, open_store, referral_id, request_hash
from bridge.store.migrations import latest_version
from bridge.store.schema import schema_migrations

T0 = datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=-5)))


def _ref(task: str, version: str, status: ReferralStatus = ReferralStatus.REQUESTED) -> Referral:
    return Referral(
        id=referral_id("clinic", task),
        endpoint="clinic",
        task_id=task,
        task_version=version,
        service_request_id="sr-1",
        status=status,
        last_modified=T0 + timedelta(minutes=int(version)),
    )


async def test_inbox_deduplicates_and_keeps_newest(store: Store) -> None:
    assert await store.inbox.upsert(_ref("t1", "1"), now=T0)
    assert not await store.inbox.upsert(_ref("t1", "1"), now=T0)  # same event twice
    assert await store.inbox.upsert(_ref("t1", "3", ReferralStatus.ACCEPTED), now=T0)
    assert not await store.inbox.upsert(_ref("t1", "2"), now=T0)  # an older poll result arrives late
    [entry] = await store.inbox.list()
    assert entry.referral.status is ReferralStatus.ACCEPTED and entry.referral.task_version == "3"
    got = await store.inbox.get(referral_id("clinic", "t1"))
    assert got.referral == entry.referral
    assert await store.inbox.find_task("clinic", "t1") is not None
    assert await store.inbox.find_task("clinic", "nope") is None
    assert await store.inbox.list(statuses=[ReferralStatus.REQUESTED]) == []


def test_referral_id_is_a_fhir_id() -> None:
    assert referral_id("clinic_a", "abc/1") == "clinic-a.abc-1"
    assert len(referral_id("e" * 80, "t")) == 64


async def test_idempotency_keys(store: Store) -> None:
    h = request_hash({"b": 1, "a": [1, 2]})
    assert h == request_hash({"a": [1, 2], "b": 1})
    assert await store.idempotency.lookup("app", "k1", h) is None
    async with store.transaction() as conn:
        await store.idempotency.record("app", "k1", h, "sub-1", now=T0, conn=conn)
    assert await store.idempotency.lookup("app", "k1", h) == "sub-1"
    assert await store.idempotency.lookup("other-app", "k1", h) is None  # scoped by caller
    with pytest.raises(IdempotencyConflictError):
        await store.idempotency.lookup("app", "k1", request_hash({"b": 2}))


async def test_transaction_is_atomic(store: Store) -> None:
    h = request_hash({})
    with pytest.raises(StoreError):
        async with store.transaction() as conn:
            await store.idempotency.record("app", "k", h, "sub-1", now=T0, conn=conn)
            await store.idempotency.record("app", "k", h, "sub-2", now=T0, conn=conn)  # duplicate key
    assert await store.idempotency.lookup("app", "k", h) is None


async def test_audit_log_is_append_only(store: Store) -> None:
    await store.audit.append(actor="peer:p1", action="submit", subject="sub-1", at=T0, source="10.0.0.1")
    await store.audit.append(
        actor="bridge", action="disclose", subject="sub-1", at=T0, detail={"endpoint": "clinic"}
    )
    entries = await store.audit.entries(subject="sub-1")
    assert [e.action for e in entries] == ["submit", "disclose"]
    assert entries[0].at == T0 and entries[1].detail == {"endpoint": "clinic"}
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(StoreError):
            async with store.transaction() as conn:
                await conn.execute(text(sql))
    assert len(await store.audit.entries()) == 2


async def test_sync_state(store: Store) -> None:
    assert await store.sync.get("poll:clinic") is None
    await store.sync.put("poll:clinic", {"since": "2026-01-01T00:00:00Z"}, now=T0)
    await store.sync.put("poll:clinic", {"since": "2026-01-02T00:00:00Z"}, now=T0)
    assert await store.sync.get("poll:clinic") == {"since": "2026-01-02T00:00:00Z"}


async def test_migrations_run_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    for _ in range(2):
        s = await open_store(url)
        async with s.transaction() as conn:
            versions = list((await conn.execute(select(schema_migrations.c.version))).scalars())
        await s.close()
    assert versions == list(range(1, latest_version() + 1))


async def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    s = await open_store(f"sqlite:///{tmp_path / 'w.db'}")
    async with s.transaction() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
    await s.close()
    assert mode == "wal"


async def test_sqlite_syncs_durable_transactions_only(tmp_path: Path) -> None:
    s = await open_store(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        async with s.transaction() as conn:
            normal = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        async with s.transaction(durable=True) as conn:
            full = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
        async with s.transaction() as conn:
            after = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    finally:
        await s.close()
    assert (normal, full, after) == (1, 2, 1)  # NORMAL, FULL for the accepted work, NORMAL again


async def test_racing_upserts_of_one_referral_store_it_once(store: Store) -> None:
    import asyncio

    results = await asyncio.gather(*(store.inbox.upsert(_ref("t9", "1"), now=T0) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]  # the losers neither fail nor duplicate
    assert len(await store.inbox.list()) == 1
    puts = [store.sync.put("k", {"n": n}, now=T0) for n in range(4)]
    await asyncio.gather(*puts)
    assert (await store.sync.get("k") or {}).get("n") in range(4)


async def test_inbox_orders_opaque_versions_by_last_updated_across_offsets(store: Store) -> None:
    """Issue 12 (3): with UUID version ids (int() gave 0 for all) and lastModified missing or in
    another offset (compared as strings), a clinic's cancellation of an accepted Task was dropped."""
    utc = UTC
    accepted = _ref("t-uuid", "1", ReferralStatus.ACCEPTED).model_copy(
        update={
            "task_version": "0a0e6084-f41a-4ac7-8510-857e71ab5bc6",
            "task_updated": datetime(2026, 3, 14, 15, 0, tzinfo=utc),
            "last_modified": None,
        }
    )
    # written by the clinic later, stamped at UTC-5 (11:00-05:00 is 16:00Z), no lastModified
    cancelled = _ref("t-uuid", "1", ReferralStatus.CANCELLED).model_copy(
        update={
            "task_version": "c4d08dfa-dcfc-41f7-882b-1a5ca18d9820",
            "task_updated": datetime(2026, 3, 14, 11, 0, tzinfo=T0.tzinfo),
            "last_modified": None,
        }
    )
    assert await store.inbox.upsert(accepted, now=T0)
    assert await store.inbox.upsert(cancelled, now=T0)
    assert not await store.inbox.upsert(accepted, now=T0)  # the older copy arriving late
    entry = await store.inbox.find_task("clinic", "t-uuid")
    assert entry is not None and entry.referral.status is ReferralStatus.CANCELLED
