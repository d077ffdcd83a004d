"""Migration 7 gives every existing referral its assignee from the audit log (the latest accept
by a practitioner), once; later accepts are stored as they happen (``Inbox.assign``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete

from bridge.store import Store
from bridge.store.migrations import migrate
from bridge.store.schema import schema_migrations
from bridge_dev import samples

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def test_existing_referrals_get_their_assignee_from_the_audit_log(store: Store) -> None:
    for rid in ("r-1", "r-2", "r-3"):
        await store.inbox.upsert(samples.referral(rid, task_id=f"t-{rid}"), now=AT)
    for actor, subject in (
        ("practitioner:peer-1", "r-1"),
        ("practitioner:peer-2", "r-1"),  # accepted again later: the latest wins
        ("api_key:ops", "r-2"),  # not a practitioner: nobody to assign
    ):
        await store.audit.append(actor=actor, action="referral.accept", subject=subject, at=AT)
    async with store.transaction() as conn:  # as if the database stopped at migration 6
        await conn.execute(delete(schema_migrations).where(schema_migrations.c.version == 7))
        assert await migrate(conn) == [7]
    assert [(await store.inbox.get(r)).assignee for r in ("r-1", "r-2", "r-3")] == ["peer-2", None, None]

    await store.inbox.assign("r-3", "peer-1", now=AT)
    assert (await store.inbox.get("r-3")).assignee == "peer-1"
