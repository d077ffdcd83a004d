"""The durable store: outbox, inbox, idempotency keys, append-only audit log, migrations.

SQLite by default (one file, WAL); PostgreSQL when several bridge instances share work (claims with
``FOR UPDATE SKIP LOCKED`` and leases). One code path: SQLAlchemy 2 async Core over aiosqlite and
asyncpg. Store and driver failures surface as :class:`bridge.errors.StoreError`; a missing row as
:class:`bridge.errors.NotFoundInStoreError`. All times are aware datetimes passed in by the caller.

    store = await open_store("sqlite+aiosqlite:///var/bridge.db")      # migrates on open
    item = await store.outbox.enqueue(kind=..., endpoint=..., partition_key=..., item_key=...,
                                      payload={...}, now=now)
    items = await store.outbox.claim(owner="bridge-1", now=now, lease_seconds=60, limit=8,
                                     endpoint="clinic")
    await store.outbox.mark_delivered(item.id, owner="bridge-1", now=now, result={...})
    async with store.transaction() as conn:          # several calls, one transaction
        await store.idempotency.record(..., conn=conn)
        await store.outbox.enqueue(..., conn=conn)
        await store.audit.append(..., conn=conn)

Modules: ``schema`` (tables), ``migrations`` (ordered steps), ``engine`` (URL, pragmas, errors),
``outbox``, ``inbox``, ``idempotency``, ``audit``, ``sync_state``, ``store`` (the facade).
"""

from __future__ import annotations

from bridge.store.audit import AuditEntry, AuditLog
from bridge.store.idempotency import IdempotencyKeys, request_hash
from bridge.store.inbox import Inbox, InboxEntry, referral_id
from bridge.store.outbox import Outbox, OutboxItem, OutboxState, new_tracking_id
from bridge.store.store import Store, open_store
from bridge.store.sync_state import SyncState

__all__ = [
    "AuditEntry",
    "AuditLog",
    "IdempotencyKeys",
    "Inbox",
    "InboxEntry",
    "Outbox",
    "OutboxItem",
    "OutboxState",
    "Store",
    "SyncState",
    "new_tracking_id",
    "open_store",
    "referral_id",
    "request_hash",
]
