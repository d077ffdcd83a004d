"""Table definitions (SQLAlchemy Core), one set for SQLite and PostgreSQL.

Times are stored in UTC: ``timestamptz`` on PostgreSQL, ISO text on SQLite (which has no time type;
naive UTC text sorts correctly, so ``next_attempt_at <= :now`` works the same on both).
Tables are created by :mod:`bridge.store.migrations`, never by ``create_all`` at import.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets a 64-bit identity
SeqId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; refuses naive values (a timezone bug waiting)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware datetime")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

# States: queued -> sending -> delivered | dead (and sending -> queued on a retryable failure);
# held -> queued when the policy's hold is resolved (co-sign, escalation)
outbox = Table(
    "outbox",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),  # submission order
    Column("id", String(64), nullable=False, unique=True),  # the tracking id answered with 202
    Column("kind", String(32), nullable=False),  # encounter | note | ...
    Column("endpoint", String(128), nullable=False),  # configured EHR endpoint name
    # items with the same partition key are delivered in seq order (a note never before its encounter)
    Column("partition_key", String(200), nullable=False),
    Column("item_key", String(200), nullable=False),  # the record's own id, for operators
    Column("payload", JSON, nullable=False),  # the domain records; mapped at delivery time
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UtcDateTime),
    Column("last_error", Text),
    Column("last_outcome", JSON),  # the server's OperationOutcome, when it sent one
    Column("result", JSON),  # FHIR ids recorded on delivery: {"Encounter": "Encounter/12", ...}
    Column("submitted_by", String(128)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Column("hold", JSON),  # held items: the violations keeping them back (migration 5)
    # the policy's warnings at acceptance: rule, severity, message only (evidence is note text)
    Column("warnings", JSON),  # migration 6
    # the organization the submitter acted for (migration 7; NULL: written before, when a bridge
    # served exactly one organization, its own)
    Column("organization", String(128)),
)
Index("outbox_due", outbox.c.endpoint, outbox.c.state, outbox.c.next_attempt_at)
Index("outbox_partition", outbox.c.partition_key, outbox.c.seq)
Index("outbox_state", outbox.c.state, outbox.c.seq)

# Referrals in the peer view (minimum necessary), one row per (endpoint, Task)
inbox = Table(
    "inbox",
    metadata,
    Column("id", String(64), primary_key=True),  # the referral id the peer app uses
    Column("endpoint", String(128), nullable=False),
    Column("task_id", String(128), nullable=False),
    Column("task_version", String(64)),  # a FHIR id: opaque, up to 64 (UUIDs are 36)
    Column("status", String(32), nullable=False),
    Column("last_modified", UtcDateTime),
    Column("referral", JSON, nullable=False),  # bridge.domain.Referral as JSON
    Column("received_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # the practitioner who accepted it (migration 7, filled from the audit log for older rows)
    Column("assignee", String(200)),
    UniqueConstraint("endpoint", "task_id", name="inbox_task"),
)
Index("inbox_status", inbox.c.status, inbox.c.updated_at)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(128), primary_key=True),  # the caller (API key name / subject)
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("submission_id", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# how the audit log names a peer acting as themselves ("practitioner:<directory id>")
PRACTITIONER = "practitioner:"

# Append-only: triggers (migration 2) refuse UPDATE and DELETE on both databases
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", SeqId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),  # who: API key name, user, or "bridge:<instance>"
    Column("action", String(64), nullable=False),  # submit | disclose | view | referral.accept | ...
    Column("subject", String(200), nullable=False),  # what: submission id, Task reference, referral id
    Column("outcome", String(32), nullable=False),  # ok | refused | failed
    Column("source", String(200)),  # from where: client address, endpoint name
    Column("detail", JSON),  # codes and ids only, never PHI
)
Index("audit_subject", audit_log.c.subject, audit_log.c.seq)

# Billable units accepted per session, so the next session's caps see what was already billed
# (migration 6). One row per session record: a re-submitted session replaces its row.
billing_ledger = Table(
    "billing_ledger",
    metadata,
    Column("encounter_id", String(200), primary_key=True),
    Column("submission_id", String(64), nullable=False),  # outbox.id: dead-lettered ones don't count
    Column("participant_id", String(200), nullable=False),
    Column("peer_id", String(200), nullable=False),
    Column("service_date", String(10), nullable=False),  # YYYY-MM-DD as the session's own clock read it
    Column("billable_units", Integer, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)
Index("billing_ledger_participant", billing_ledger.c.participant_id, billing_ledger.c.service_date)

# Small durable key/value state for the inbound side (poll cursors, subscription ids, event counts)
sync_state = Table(
    "sync_state",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Signed-in browsers (migration 8). The cookie holds a random session id; only its SHA-256 is kept,
# so a copy of the database (or a backup) signs nobody in. Who the person is was decided at sign-in.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("subject", String(200), nullable=False),  # the ID token's sub (or the API key's name)
    Column("role", String(32), nullable=False),
    Column("organization", String(128), nullable=False),
    Column("practitioner_id", String(200)),
    Column("via", String(16), nullable=False),  # oidc | jwt | api_key
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),  # absolute end, whatever the activity
)
Index("web_sessions_expiry", web_sessions.c.expires_at)

# Sign-ins under way (migration 8): the authorization request's state (hashed, the key), the
# browser it was started in (hash of a cookie of its own), nonce and PKCE verifier. Taken once.
web_signins = Table(
    "web_signins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("browser_hash", String(64), nullable=False),
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("return_to", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)
Index("web_signins_expiry", web_signins.c.expires_at)
