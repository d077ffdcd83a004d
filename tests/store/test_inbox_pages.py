"""What the workspace pages ask of the inbox and the outbox, on SQLite and PostgreSQL: open
referrals first, a count for paging, a cheap text pre-filter for a search by name, and the newest
items one person submitted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.domain import HumanName, ReferralContact, ReferralStatus
from bridge.store import Store
from bridge_dev import samples

NOW = datetime(2026, 12, 7, 20, 30, tzinfo=UTC)
OPEN = (ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED)


async def _fill(store: Store) -> None:
    people = [("Ana", "Rivera"), ("José", "Núñez"), ("Sam", "O'Neil_%"), ("Lee", "Park")]
    for i, (given, family) in enumerate(people):
        ref = samples.referral(
            f"r-{i}",
            task_id=f"t-{i}",
            status=ReferralStatus.COMPLETED if i == 3 else ReferralStatus.REQUESTED,
            contact=ReferralContact(name=HumanName(given=given, family=family)),
        )
        await store.inbox.upsert(ref, now=NOW - timedelta(hours=3 - i))  # r-3 the newest


async def test_open_referrals_come_first_and_are_counted(store: Store) -> None:
    await _fill(store)
    ids = [e.referral.id for e in await store.inbox.list(first=OPEN)]
    assert ids == ["r-2", "r-1", "r-0", "r-3"]  # the completed one last although the newest
    assert await store.inbox.count(statuses=list(OPEN)) == 3 and await store.inbox.count() == 4
    page = await store.inbox.list(first=OPEN, limit=2, offset=2)
    assert [e.referral.id for e in page] == ["r-0", "r-3"]


async def test_the_text_pre_filter_is_case_blind_and_takes_wildcards_literally(store: Store) -> None:
    await _fill(store)
    assert [e.referral.id for e in await store.inbox.list(containing="rIVERA")] == ["r-0"]
    assert [e.referral.id for e in await store.inbox.list(containing="_%")] == ["r-2"]
    assert [e.referral.id for e in await store.inbox.list(containing="%")] == ["r-2"]  # literally
    assert [e.referral.id for e in await store.inbox.list(containing="Park", statuses=list(OPEN))] == []


async def test_the_newest_items_one_person_submitted(store: Store) -> None:
    for i, who in enumerate(["practitioner:a", "practitioner:b", "practitioner:a", "practitioner:a"]):
        await store.outbox.enqueue(
            kind="note" if i != 3 else "encounter",
            endpoint="clinic",
            partition_key=f"p-{i}",
            item_key=f"n-{i}",
            payload={"i": i},
            now=NOW + timedelta(seconds=i),
            submitted_by=who,
            organization="harbor-recovery",
        )
    mine = await store.outbox.latest(
        kind="note", organization="harbor-recovery", submitted_by="practitioner:a"
    )
    assert [i.item_key for i in mine] == ["n-2", "n-0"]  # newest first, notes only, only a's
    assert await store.outbox.latest(kind="note", organization="elsewhere") == []
