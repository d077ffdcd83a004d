"""Outbox behaviour, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from bridge.errors import InputError, NotFoundInStoreError, StoreError
from bridge.store import OutboxState, Store

# a non-UTC instant: catches code that drops or assumes the timezone
T0 = datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=-5)))


async def _put(store: Store, key: str, *, partition: str | None = None, endpoint: str = "clinic", at=T0):
    return await store.outbox.enqueue(
        kind="encounter",
        endpoint=endpoint,
        partition_key=partition or f"p-{key}",
        item_key=key,
        payload={"encounter": {"id": key}},
        now=at,
    )


async def test_enqueue_claim_deliver(store: Store) -> None:
    item = await _put(store, "e1")
    assert item.state is OutboxState.QUEUED and item.attempts == 0
    assert item.created_at == T0  # round-trips as the same instant, aware

    claimed = await store.outbox.claim(owner="a", now=T0, lease_seconds=30, limit=10)
    assert [c.id for c in claimed] == [item.id]
    assert claimed[0].state is OutboxState.SENDING and claimed[0].attempts == 1
    assert claimed[0].lease_expires_at == T0 + timedelta(seconds=30)
    # claimed work is not claimable again while the lease holds
    assert (
        await store.outbox.claim(owner="b", now=T0 + timedelta(seconds=29), lease_seconds=30, limit=10) == []
    )

    ok = await store.outbox.mark_delivered(item.id, owner="a", now=T0, result={"Encounter": "Encounter/9"})
    assert ok
    got = await store.outbox.get(item.id)
    assert got.state is OutboxState.DELIVERED and got.result == {"Encounter": "Encounter/9"}
    assert got.lease_owner is None and got.delivered_at == T0


async def test_not_claimed_before_next_attempt(store: Store) -> None:
    item = await _put(store, "e1")
    [c] = await store.outbox.claim(owner="a", now=T0, lease_seconds=30, limit=1)
    later = T0 + timedelta(seconds=60)
    assert await store.outbox.mark_retry(c.id, owner="a", now=T0, next_attempt_at=later, error="503")
    assert (
        await store.outbox.claim(owner="a", now=later - timedelta(seconds=1), lease_seconds=30, limit=1) == []
    )
    [again] = await store.outbox.claim(owner="a", now=later, lease_seconds=30, limit=1)
    assert again.id == item.id and again.attempts == 2 and again.last_error == "503"


async def test_expired_lease_is_reclaimed_and_old_owner_cannot_finish(store: Store) -> None:
    item = await _put(store, "e1")
    await store.outbox.claim(owner="dead-instance", now=T0, lease_seconds=10, limit=1)
    [c] = await store.outbox.claim(owner="b", now=T0 + timedelta(seconds=10), lease_seconds=10, limit=1)
    assert c.id == item.id and c.lease_owner == "b" and c.attempts == 2
    assert not await store.outbox.mark_delivered(item.id, owner="dead-instance", now=T0, result={})
    assert not await store.outbox.mark_dead(item.id, owner="dead-instance", now=T0, error="x")
    assert (await store.outbox.get(item.id)).lease_owner == "b"


async def test_renew_extends_only_a_held_lease(store: Store) -> None:
    item = await _put(store, "e1")
    await store.outbox.claim(owner="a", now=T0, lease_seconds=10, limit=1)
    assert await store.outbox.renew(item.id, owner="a", now=T0 + timedelta(seconds=5), lease_seconds=10)
    assert (
        await store.outbox.claim(owner="b", now=T0 + timedelta(seconds=12), lease_seconds=10, limit=1) == []
    )
    assert not await store.outbox.renew(item.id, owner="b", now=T0, lease_seconds=10)


async def test_partition_head_only(store: Store) -> None:
    enc = await _put(store, "enc", partition="alice@clinic")
    note = await _put(store, "note", partition="alice@clinic")
    other = await _put(store, "bob-enc", partition="bob@clinic")
    claimed = await store.outbox.claim(owner="a", now=T0, lease_seconds=30, limit=10)
    assert [c.id for c in claimed] == [enc.id, other.id]  # the note waits for its encounter
    # while the encounter waits for a retry, the note still waits
    await store.outbox.mark_retry(
        enc.id, owner="a", now=T0, next_attempt_at=T0 + timedelta(seconds=5), error="x"
    )
    assert (
        await store.outbox.claim(owner="a", now=T0 + timedelta(seconds=1), lease_seconds=30, limit=10) == []
    )
    [c] = await store.outbox.claim(owner="a", now=T0 + timedelta(seconds=5), lease_seconds=30, limit=10)
    assert c.id == enc.id
    await store.outbox.mark_delivered(enc.id, owner="a", now=T0, result={})
    [n] = await store.outbox.claim(owner="a", now=T0 + timedelta(seconds=5), lease_seconds=30, limit=10)
    assert n.id == note.id


async def test_dead_item_does_not_block_its_partition(store: Store) -> None:
    enc = await _put(store, "enc", partition="alice@clinic")
    note = await _put(store, "note", partition="alice@clinic")
    await store.outbox.claim(owner="a", now=T0, lease_seconds=30, limit=1)
    await store.outbox.mark_dead(
        enc.id, owner="a", now=T0, error="422", outcome={"resourceType": "OperationOutcome"}
    )
    [c] = await store.outbox.claim(owner="a", now=T0, lease_seconds=30, limit=10)
    assert c.id == note.id
    dead = await store.outbox.get(enc.id)
    assert dead.state is OutboxState.DEAD and dead.last_outcome == {"resourceType": "OperationOutcome"}


async def test_claim_by_endpoint_and_limit(store: Store) -> None:
    a = [await _put(store, f"a{i}", endpoint="clinic-a") for i in range(3)]
    await _put(store, "b0", endpoint="clinic-b")
    claimed = await store.outbox.claim(owner="x", now=T0, lease_seconds=30, limit=2, endpoint="clinic-a")
    assert [c.id for c in claimed] == [a[0].id, a[1].id]
    assert await store.outbox.claim(owner="x", now=T0, lease_seconds=30, limit=0) == []


async def test_concurrent_claims_are_disjoint(store: Store) -> None:
    ids = {(await _put(store, f"k{i}")).id for i in range(40)}
    results = await asyncio.gather(
        *(store.outbox.claim(owner=f"w{i}", now=T0, lease_seconds=30, limit=7) for i in range(8))
    )
    seen = [c.id for batch in results for c in batch]
    assert len(seen) == len(set(seen))  # nothing claimed twice
    assert set(seen) <= ids and len(seen) == 40


async def test_operator_retry_and_purge(store: Store) -> None:
    d = await _put(store, "d")
    ok = await _put(store, "ok")
    await store.outbox.claim(owner="a", now=T0, lease_seconds=30, limit=10)
    await store.outbox.mark_dead(d.id, owner="a", now=T0, error="gone")
    await store.outbox.mark_delivered(ok.id, owner="a", now=T0, result={})
    assert await store.outbox.counts() == {"queued": 0, "sending": 0, "delivered": 1, "dead": 1, "held": 0}

    assert await store.outbox.retry([d.id], now=T0) == 1
    again = await store.outbox.get(d.id)
    assert again.state is OutboxState.QUEUED and again.attempts == 0
    assert await store.outbox.retry(None, now=T0) == 0  # nothing dead any more

    with pytest.raises(InputError) as exc:
        await store.outbox.purge(states=[OutboxState.QUEUED], older_than=T0)
    assert exc.value.field == "state"
    assert await store.outbox.purge(states=[OutboxState.DELIVERED], older_than=T0) == 0  # not older
    assert await store.outbox.purge(states=[OutboxState.DELIVERED], older_than=T0 + timedelta(days=1)) == 1
    with pytest.raises(NotFoundInStoreError):
        await store.outbox.get(ok.id)
    assert [i.id for i in await store.outbox.list(states=[OutboxState.QUEUED])] == [d.id]


async def test_duplicate_tracking_id_is_a_store_error(store: Store) -> None:
    item = await _put(store, "x")
    with pytest.raises(StoreError):
        await store.outbox.enqueue(
            kind="note", endpoint="c", partition_key="p", item_key="k", payload={}, now=T0, item_id=item.id
        )


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises((StoreError, ValueError)):
        await _put(store, "x", at=datetime(2026, 1, 1))


async def test_expedite_and_next_due(store: Store) -> None:
    assert await store.outbox.next_due() is None
    a = await _put(store, "a", endpoint="clinic")
    b = await _put(store, "b", endpoint="other")
    for item in (a, b):
        [c] = await store.outbox.claim(owner="w", now=T0, lease_seconds=30, limit=1, endpoint=item.endpoint)
        await store.outbox.mark_retry(
            c.id, owner="w", now=T0, next_attempt_at=T0 + timedelta(hours=1), error="x"
        )
    assert await store.outbox.next_due(endpoint="clinic") == T0 + timedelta(hours=1)
    assert await store.outbox.expedite(endpoint="clinic", now=T0) == 1
    assert await store.outbox.next_due(endpoint="clinic") == T0
    assert (await store.outbox.get(b.id)).next_attempt_at == T0 + timedelta(hours=1)


async def test_find_by_record(store: Store) -> None:
    first = await _put(store, "enc-7")
    again = await _put(store, "enc-7")
    await _put(store, "enc-8")
    assert [i.id for i in await store.outbox.find(kind="encounter", item_key="enc-7")] == [first.id, again.id]
    assert await store.outbox.find(kind="note", item_key="enc-7") == []


async def test_deliveries_recorded_together_keep_their_own_results_and_leases(store: Store) -> None:
    """One statement records a group: each item gets its own FHIR ids, and only an owner that
    still holds the lease records anything (an instance whose lease ran out cannot)."""
    a, b, c = [await _put(store, k) for k in ("a", "b", "c")]
    mine = await store.outbox.claim(owner="w1", now=T0, lease_seconds=10, limit=10)
    assert {i.id for i in mine} == {a.id, b.id, c.id}
    later = T0 + timedelta(seconds=11)  # w1's leases ran out and w2 took the items
    taken = await store.outbox.claim(owner="w2", now=later, lease_seconds=10, limit=10)
    assert {i.id for i in taken} == {a.id, b.id, c.id}
    assert await store.outbox.mark_delivered_many({a.id: {"refs": []}}, owner="w1", now=later) == set()
    async with store.transaction() as conn:
        done = await store.outbox.mark_delivered_many(
            {a.id: {"refs": ["Encounter/1"]}, c.id: {"refs": ["Encounter/3"]}},
            owner="w2",
            now=later,
            conn=conn,
        )
    assert done == {a.id, c.id}
    got = {i: await store.outbox.get(i) for i in (a.id, b.id, c.id)}
    assert got[a.id].result == {"refs": ["Encounter/1"]} and got[a.id].state is OutboxState.DELIVERED
    assert got[c.id].result == {"refs": ["Encounter/3"]} and got[c.id].delivered_at == later
    assert got[b.id].state is OutboxState.SENDING and got[b.id].lease_owner == "w2"
    assert got[b.id].result is None
    assert await store.outbox.mark_delivered_many({}, owner="w2", now=later) == set()


async def test_transactions_cancelled_midway_leave_the_store_usable(store: Store) -> None:
    """A delivery's lease renewer is cancelled whenever its delivery ends, at any point of its
    transaction (even inside BEGIN, which the driver's thread still carries out): a connection
    must never go back to the pool with a transaction open, or the next BEGIN on it fails."""
    item = await _put(store, "c1")
    await store.outbox.claim(owner="w", now=T0, lease_seconds=30, limit=1)
    for k in range(60):
        task = asyncio.create_task(
            store.outbox.renew(item.id, owner="w", now=T0 + timedelta(seconds=1), lease_seconds=30)
        )
        for _ in range(k % 6):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await store.outbox.renew(item.id, owner="w", now=T0, lease_seconds=30)
