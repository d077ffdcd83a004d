"""Referrals through the API on the real stack (sandbox EHR, ExchangeService, SQLite, rule files):
the Task moves at the EHR, and with ``peers_see_only_own`` a peer sees the organization's open
queue and their own referrals, never a colleague's."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from bridge.mappers import referral_id_for
from bridge.store import open_store
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import TokenFactory, bearer
from tests.web.stack import Stack, add_peer, place_referrals, serve, write_stack

Client = TestClient[Any, Any]


@pytest.fixture
async def only_own(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any]
) -> AsyncIterator[tuple[Client, Stack, list[str]]]:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0, jwks_file=jwks_file, peers_see_only_own=True)
    # the callers below, as the directory knows them (acting on a referral checks the caller)
    add_peer(stack, "peer-alice")
    add_peer(stack, "peer-bob")
    add_peer(stack, "sup-1", role="peer-supervisor", level="supervisor")
    tasks = await place_referrals(stack, sandbox_ehr, 2)
    async with serve(stack) as client:
        yield client, stack, tasks


async def _ids(client: Client, token: str) -> set[str]:
    resp = await client.get("/api/v1/referrals", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return {r["id"] for r in (await resp.json())["items"]}


async def test_accepted_referral_is_the_accepting_peers_own(
    only_own: tuple[Client, Stack, list[str]], make_token: TokenFactory, sandbox_ehr: Sandbox
) -> None:
    client, stack, tasks = only_own
    mine, queue = (referral_id_for("clinic", t) for t in tasks)
    alice = make_token(practitioner_id="peer-alice")
    bob = make_token(practitioner_id="peer-bob")
    supervisor = make_token("peer-supervisor", practitioner_id="sup-1")

    for _ in range(100):  # the start-up poll fills the inbox beside the first requests
        if {mine, queue} <= await _ids(client, alice):
            break
        await asyncio.sleep(0.1)
    assert {mine, queue} <= await _ids(client, bob)  # both unassigned: the organization's queue

    resp = await client.post(f"/api/v1/referrals/{mine}/accept", json={}, headers=bearer(alice))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "accepted"
    async with httpx.AsyncClient(timeout=30) as ehr:
        task = (await ehr.get(f"{sandbox_ehr.base_url}/Task/{tasks[0]}")).json()
    assert task["status"] == "accepted"

    assert {mine, queue} <= await _ids(client, alice)
    bobs = await _ids(client, bob)
    assert queue in bobs and mine not in bobs
    assert (await client.get(f"/api/v1/referrals/{mine}", headers=bearer(bob))).status == 404
    assert (await client.post(f"/api/v1/referrals/{mine}/start", json={}, headers=bearer(bob))).status == 404
    assert {mine, queue} <= await _ids(client, supervisor)

    # a second accept of the same referral is a state-machine refusal, not a silent success
    again = await client.post(f"/api/v1/referrals/{mine}/accept", json={}, headers=bearer(alice))
    assert again.status == 409 and (await again.json())["code"] == "invalid_transition"

    store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")
    try:
        entries = await store.audit.entries(subject=mine)
    finally:
        await store.close()
    assert ("practitioner:peer-alice", "referral.accept") in {(e.actor, e.action) for e in entries}
    # bob's refused look is not recorded as a view
    assert ("practitioner:peer-bob", "view") not in {(e.actor, e.action) for e in entries}
