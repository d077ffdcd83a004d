"""Browser sessions and sign-ins under way in the store, on SQLite and PostgreSQL. Time is passed
in (a non-UTC instant, to catch a zone slip)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from bridge.store import Store
from bridge.store.schema import web_sessions, web_signins
from bridge.store.sessions import SessionRecord, new_secret

T0 = datetime(2026, 3, 9, 8, 30, tzinfo=timezone(timedelta(hours=-6)))
IDLE = timedelta(minutes=30)
PEER = SessionRecord("sub-1", "peer-specialist", "harbor-recovery", "peer-1", "oidc")


async def test_a_session_lives_until_its_end_or_its_idle_timeout(store: Store) -> None:
    sid = new_secret()
    await store.sessions.create(sid, PEER, now=T0, expires_at=T0 + timedelta(hours=12))
    assert await store.sessions.get(sid, now=T0 + timedelta(minutes=29), idle=IDLE) == PEER
    # used at +29 min: idle counts from then
    assert await store.sessions.get(sid, now=T0 + timedelta(minutes=58), idle=IDLE) == PEER
    assert await store.sessions.get(sid, now=T0 + timedelta(minutes=89), idle=IDLE) is None  # idle
    assert await store.sessions.get(sid, now=T0, idle=IDLE) is None  # and deleted

    sid = new_secret()
    await store.sessions.create(sid, PEER, now=T0, expires_at=T0 + timedelta(hours=1))
    for minutes in (20, 40, 59):
        assert await store.sessions.get(sid, now=T0 + timedelta(minutes=minutes), idle=IDLE) == PEER
    assert await store.sessions.get(sid, now=T0 + timedelta(minutes=61), idle=IDLE) is None  # its end


async def test_only_digests_are_stored_and_a_sign_in_replaces_the_old_session(store: Store) -> None:
    old, new = new_secret(), new_secret()
    await store.sessions.create(old, PEER, now=T0, expires_at=T0 + timedelta(hours=1))
    await store.sessions.create(new, PEER, now=T0, expires_at=T0 + timedelta(hours=1), replaces=old)
    async with store.transaction() as conn:
        hashes = set((await conn.execute(select(web_sessions.c.id_hash))).scalars())
    assert len(hashes) == 1 and new not in hashes and old not in hashes
    assert await store.sessions.get(old, now=T0, idle=IDLE) is None
    assert await store.sessions.get(new, now=T0, idle=IDLE) == PEER
    assert await store.sessions.delete(new) and await store.sessions.get(new, now=T0, idle=IDLE) is None


async def test_a_sign_in_under_way_is_taken_once_and_not_after_its_end(store: Store) -> None:
    state = new_secret()
    await store.sessions.begin_signin(
        state,
        browser="b",
        nonce="n",
        code_verifier="v",
        return_to="/inbox",
        now=T0,
        expires_at=T0 + timedelta(minutes=10),
    )
    async with store.transaction() as conn:
        assert state not in set((await conn.execute(select(web_signins.c.state_hash))).scalars())
    taken = await store.sessions.take_signin(state, now=T0 + timedelta(minutes=1))
    assert taken is not None and taken.nonce == "n" and taken.code_verifier == "v"
    assert await store.sessions.take_signin(state, now=T0 + timedelta(minutes=1)) is None

    late = new_secret()
    await store.sessions.begin_signin(
        late,
        browser="b",
        nonce="n",
        code_verifier="v",
        return_to="/inbox",
        now=T0,
        expires_at=T0 + timedelta(minutes=10),
    )
    assert await store.sessions.take_signin(late, now=T0 + timedelta(minutes=11)) is None


async def test_purge_drops_what_has_ended(store: Store) -> None:
    ended, live = new_secret(), new_secret()
    await store.sessions.create(ended, PEER, now=T0, expires_at=T0 + timedelta(minutes=5))
    await store.sessions.create(live, PEER, now=T0, expires_at=T0 + timedelta(hours=5))
    await store.sessions.begin_signin(
        new_secret(), browser="b", nonce="n", code_verifier="v", return_to="/inbox", now=T0, expires_at=T0
    )
    assert await store.sessions.purge(now=T0 + timedelta(minutes=6)) == 2
    assert await store.sessions.get(live, now=T0 + timedelta(minutes=6), idle=IDLE) == PEER
