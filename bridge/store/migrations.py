"""Schema migrations: an explicit, ordered list; each runs once, recorded in ``schema_migrations``.

Migrations run inside one transaction under a lock (PostgreSQL advisory lock; SQLite's
``BEGIN IMMEDIATE``), so several bridge instances starting together apply each step exactly once.
Add a step by appending to ``MIGRATIONS``; never edit a step that has shipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store import schema
from bridge.store.schema import PRACTITIONER


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[AsyncConnection], Awaitable[None]]


async def _create_tables(conn: AsyncConnection) -> None:
    tables = [schema.outbox, schema.inbox, schema.idempotency_keys, schema.audit_log, schema.sync_state]
    await conn.run_sync(lambda sync: schema.metadata.create_all(sync, tables=tables))


async def _audit_append_only(conn: AsyncConnection) -> None:
    # The audit log is evidence of disclosures: the database itself refuses edits, not just our code
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
            )
        )
    else:
        for op in ("UPDATE", "DELETE"):
            await conn.execute(
                text(
                    f"CREATE TRIGGER audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
                    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                )
            )


async def _outbox_item_index(conn: AsyncConnection) -> None:
    # a note looks up its session's outbox item by record id
    await conn.execute(text("CREATE INDEX outbox_item ON outbox (kind, item_key)"))


async def _pending_indexes(conn: AsyncConnection) -> None:
    # delivered rows pile up until purged; claims should cost what the pending work costs, not
    # what the history costs (both databases take partial indexes with the same syntax)
    pending = "WHERE state IN ('queued', 'sending')"
    await conn.execute(text(f"CREATE INDEX outbox_pending ON outbox (endpoint, seq) {pending}"))
    await conn.execute(
        text(f"CREATE INDEX outbox_pending_partition ON outbox (partition_key, seq) {pending}")
    )


async def _held_items(conn: AsyncConnection) -> None:
    # held notes wait in the outbox (state 'held', never claimed) with the reasons that hold them;
    # supervisors list them, so they get their own small partial index. A database created at this
    # version has the column already (step 1 creates the tables as schema.py has them now).
    if conn.dialect.name == "postgresql":
        query = (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'outbox'"
        )
        columns = set((await conn.execute(text(query))).scalars())
    else:
        columns = {row[1] for row in (await conn.execute(text("PRAGMA table_info(outbox)"))).all()}
    if "hold" not in columns:
        await conn.execute(text("ALTER TABLE outbox ADD COLUMN hold JSON"))
    await conn.execute(text("CREATE INDEX outbox_held ON outbox (seq) WHERE state = 'held'"))


async def _warnings_and_billing(conn: AsyncConnection) -> None:
    # warnings stay visible after the 202 (submission view); caps need the units already billed.
    # A database created at this version has both already (step 1 creates the tables as now).
    if "warnings" not in await _columns(conn, "outbox"):
        await conn.execute(text("ALTER TABLE outbox ADD COLUMN warnings JSON"))
    await conn.run_sync(lambda sync: schema.billing_ledger.create(sync, checkfirst=True))


async def _columns(conn: AsyncConnection, table: str) -> set[str]:
    if conn.dialect.name == "postgresql":
        query = (
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = current_schema() AND table_name = '{table}'"
        )
        return set((await conn.execute(text(query))).scalars())
    return {row[1] for row in (await conn.execute(text(f"PRAGMA table_info({table})"))).all()}


async def _wider_task_version(conn: AsyncConnection) -> None:
    # version ids are opaque FHIR ids (UUIDs at some servers: 36 characters did not fit in 32);
    # SQLite does not enforce VARCHAR lengths
    if conn.dialect.name == "postgresql":
        await conn.execute(text("ALTER TABLE inbox ALTER COLUMN task_version TYPE VARCHAR(64)"))


async def _owners_and_assignees(conn: AsyncConnection) -> None:
    # the outbox row says which organization it belongs to; the inbox row who accepted it (was
    # rebuilt on every read by scanning the audit log). Existing referrals get their assignee from
    # that log once: the latest ``referral.accept`` by a practitioner.
    if "organization" not in await _columns(conn, "outbox"):
        await conn.execute(text("ALTER TABLE outbox ADD COLUMN organization VARCHAR(128)"))
    if "assignee" not in await _columns(conn, "inbox"):
        await conn.execute(text("ALTER TABLE inbox ADD COLUMN assignee VARCHAR(200)"))
    accepts = (
        select(schema.audit_log.c.subject, schema.audit_log.c.actor)
        .where(
            schema.audit_log.c.action == "referral.accept",
            schema.audit_log.c.actor.like(f"{PRACTITIONER}%"),
        )
        .order_by(schema.audit_log.c.seq)
    )
    latest = {row.subject: row.actor for row in (await conn.execute(accepts)).all()}
    for referral_id, actor in latest.items():
        await conn.execute(
            update(schema.inbox)
            .where(schema.inbox.c.id == referral_id)
            .values(assignee=actor.removeprefix(PRACTITIONER))
        )


async def _web_sessions(conn: AsyncConnection) -> None:
    tables = [schema.web_sessions, schema.web_signins]
    await conn.run_sync(lambda sync: schema.metadata.create_all(sync, tables=tables))


MIGRATIONS: list[Migration] = [
    Migration(1, "outbox, inbox, idempotency keys, audit log, sync state", _create_tables),
    Migration(2, "audit log is append-only", _audit_append_only),
    Migration(3, "outbox lookup by record id", _outbox_item_index),
    Migration(4, "partial indexes on pending outbox items", _pending_indexes),
    Migration(5, "held outbox items and their reasons", _held_items),
    Migration(6, "stored warnings; billing ledger for caps", _warnings_and_billing),
    Migration(7, "outbox owning organization; inbox assignee (from the audit log)", _owners_and_assignees),
    Migration(8, "browser sessions and sign-ins under way", _web_sessions),
    Migration(9, "inbox Task version ids up to 64 characters (UUIDs)", _wider_task_version),
]


async def migrate(conn: AsyncConnection) -> list[int]:
    """Apply pending migrations on ``conn`` (inside the caller's transaction). Returns versions applied."""
    if conn.dialect.name == "postgresql":
        # serialise concurrent starters; the key is per schema so parallel test runs don't wait
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(current_schema()))"))
    await conn.run_sync(lambda sync: schema.schema_migrations.create(sync, checkfirst=True))
    done = set((await conn.execute(select(schema.schema_migrations.c.version))).scalars())
    applied: list[int] = []
    for m in MIGRATIONS:
        if m.version in done:
            continue
        await m.apply(conn)
        await conn.execute(
            insert(schema.schema_migrations).values(
                version=m.version, name=m.name, applied_at=datetime.now(UTC)
            )
        )
        applied.append(m.version)
    return applied


def latest_version() -> int:
    return MIGRATIONS[-1].version
