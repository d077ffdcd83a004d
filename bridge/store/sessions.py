"""Browser sessions and sign-ins under way, kept server-side (the cookie is only a random id).

    sid = new_secret()
    await store.sessions.create(sid, SessionRecord(...), now=now, expires_at=now + 12h)
    rec = await store.sessions.get(sid, now=now, idle=timedelta(minutes=30))   # None: ended
    await store.sessions.delete(sid)

    await store.sessions.begin_signin(state, browser=b, nonce=n, code_verifier=v, return_to="/inbox",
                                      now=now, expires_at=now + 10min)
    pending = await store.sessions.take_signin(state, now=now)   # once: a second take gets None

Ids, states and browser bindings are stored as SHA-256 hex digests: what the database holds cannot
be replayed as a cookie or a state. Times are passed in (aware datetimes).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.engine import Database
from bridge.store.schema import web_sessions, web_signins

# a session's last_seen_at is written at most this often (every request would be a write)
TOUCH_EVERY = timedelta(seconds=60)


def new_secret() -> str:
    """A fresh random id (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", errors="replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Who a session is: decided at sign-in, never changed by a request."""

    subject: str
    role: str
    organization: str
    practitioner_id: str | None
    via: str  # oidc | jwt | api_key


@dataclass(frozen=True, slots=True)
class PendingSignin:
    browser_hash: str
    nonce: str
    code_verifier: str
    return_to: str


class WebSessions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        session_id: str,
        record: SessionRecord,
        *,
        now: datetime,
        expires_at: datetime,
        replaces: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        """Store a new session; ``replaces`` (the browser's previous session id) is deleted in the
        same transaction: a sign-in always rotates the id."""
        async with self._db.tx(conn) as c:
            if replaces:
                await c.execute(delete(web_sessions).where(web_sessions.c.id_hash == digest(replaces)))
            await c.execute(
                web_sessions.insert().values(
                    id_hash=digest(session_id),
                    subject=record.subject,
                    role=record.role,
                    organization=record.organization,
                    practitioner_id=record.practitioner_id,
                    via=record.via,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires_at,
                )
            )

    async def get(
        self, session_id: str, *, now: datetime, idle: timedelta, conn: AsyncConnection | None = None
    ) -> SessionRecord | None:
        """The session, or None when unknown, past its end, or idle longer than ``idle`` (an ended
        session is deleted). Marks it used (at most every ``TOUCH_EVERY``)."""
        key = digest(session_id)
        async with self._db.tx(conn) as c:
            row = (await c.execute(select(web_sessions).where(web_sessions.c.id_hash == key))).first()
            if row is None:
                return None
            if row.expires_at <= now or row.last_seen_at + idle <= now:
                await c.execute(delete(web_sessions).where(web_sessions.c.id_hash == key))
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                await c.execute(
                    update(web_sessions).where(web_sessions.c.id_hash == key).values(last_seen_at=now)
                )
        return SessionRecord(
            subject=row.subject,
            role=row.role,
            organization=row.organization,
            practitioner_id=row.practitioner_id,
            via=row.via,
        )

    async def delete(self, session_id: str, *, conn: AsyncConnection | None = None) -> bool:
        async with self._db.tx(conn) as c:
            result = await c.execute(delete(web_sessions).where(web_sessions.c.id_hash == digest(session_id)))
        return bool(result.rowcount)

    async def purge(self, *, now: datetime, conn: AsyncConnection | None = None) -> int:
        """Delete sessions and sign-ins past their end (idle ones go when next looked up)."""
        async with self._db.tx(conn) as c:
            a = await c.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
            b = await c.execute(delete(web_signins).where(web_signins.c.expires_at <= now))
        return int(a.rowcount or 0) + int(b.rowcount or 0)

    async def begin_signin(
        self,
        state: str,
        *,
        browser: str,
        nonce: str,
        code_verifier: str,
        return_to: str,
        now: datetime,
        expires_at: datetime,
        conn: AsyncConnection | None = None,
    ) -> None:
        async with self._db.tx(conn) as c:
            await c.execute(
                web_signins.insert().values(
                    state_hash=digest(state),
                    browser_hash=digest(browser),
                    nonce=nonce,
                    code_verifier=code_verifier,
                    return_to=return_to,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    async def take_signin(
        self, state: str, *, now: datetime, conn: AsyncConnection | None = None
    ) -> PendingSignin | None:
        """The sign-in started with ``state``, removed as it is read: a state works once."""
        key = digest(state)
        async with self._db.tx(conn) as c:
            row = (await c.execute(select(web_signins).where(web_signins.c.state_hash == key))).first()
            if row is None:
                return None
            gone = await c.execute(delete(web_signins).where(web_signins.c.state_hash == key))
        if not gone.rowcount or row.expires_at <= now:
            return None  # another request took it first (PostgreSQL), or it is too old
        return PendingSignin(
            browser_hash=row.browser_hash,
            nonce=row.nonce,
            code_verifier=row.code_verifier,
            return_to=row.return_to,
        )
