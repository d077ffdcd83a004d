"""What the API shows of a submission and a referral list, on the real stack (sandbox EHR, SQLite,
the rule files, ``create_app`` as ``bridge serve`` builds it). Each case was a copy of the
submission record that had drifted from the exchange's (issue 9): the item's owner, the audit
actor of a list view, ``delivered_at``, the warnings of a held note.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bridge.store import open_store
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import ORG, OTHER_ORG, TokenFactory, bearer
from tests.web.stack import Stack, add_peer, encounter_for, place_referrals, serve, write_stack

Client = TestClient[Any, Any]


def _stack(ehr: Sandbox, workdir: Path, jwks: dict[str, Any]) -> Stack:
    jwks_file = workdir / "jwks.json"
    workdir.mkdir(parents=True, exist_ok=True)
    jwks_file.write_text(json.dumps(jwks))
    return write_stack(ehr, workdir / "bridge", port=0, jwks_file=jwks_file)


async def _until(check: Callable[[], Awaitable[Any]], within: float = 20.0) -> Any:
    for _ in range(int(within / 0.1)):
        if result := await check():
            return result
        await asyncio.sleep(0.1)
    return await check()


async def test_items_carry_their_owning_organization(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    """Two bridges on one store, each for its own peer organization: an item belongs to the
    organization it was submitted for, not to whichever bridge is asked about it."""
    ours = _stack(sandbox_ehr, tmp_path / "ours", jwks)
    theirs = _stack(sandbox_ehr, tmp_path / "theirs", jwks)
    config = ours.config.read_text().replace(ORG, OTHER_ORG)
    theirs.config.write_text(config.replace(str(ours.directory), str(theirs.directory)))
    # and their directory places their people in their organization (callers are checked against it)
    theirs.directory.write_text(theirs.directory.read_text().replace(ORG, OTHER_ORG))
    async with serve(ours) as ours_client, serve(theirs) as theirs_client:
        peer = make_token(organization=OTHER_ORG, practitioner_id=theirs.peer_id)
        resp = await theirs_client.post(
            "/api/v1/encounters", json=encounter_for(theirs), headers=bearer(peer)
        )
        assert resp.status == 202, await resp.text()
        sid = (await resp.json())["submission_id"]
        their_ops = {"X-API-Key": theirs.env["BRIDGE_TEST_OPS_KEY"]}
        assert (await theirs_client.get(f"/api/v1/submissions/{sid}", headers=their_ops)).status == 200

        our_ops = {"X-API-Key": ours.env["BRIDGE_TEST_OPS_KEY"]}
        resp = await ours_client.get(f"/api/v1/submissions/{sid}", headers=our_ops)
        assert resp.status == 403 and (await resp.json())["rule"] == "same-organization"
        listed = await (await ours_client.get("/api/v1/outbox", headers=our_ops)).json()
        assert sid not in [i["id"] for i in listed["items"]]
        listed = await (await theirs_client.get("/api/v1/outbox", headers=their_ops)).json()
        assert sid in [i["id"] for i in listed["items"]]


async def test_list_views_are_audited_as_the_caller(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    stack = _stack(sandbox_ehr, tmp_path, jwks)
    await place_referrals(stack, sandbox_ehr)
    async with serve(stack) as client:
        peer = bearer(make_token(practitioner_id=stack.peer_id))

        async def listed() -> list[Any]:
            resp = await client.get("/api/v1/referrals", headers=peer)
            assert resp.status == 200, await resp.text()
            return list((await resp.json())["items"])

        assert await _until(listed)  # the start-up poll brings it in
    store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")
    try:
        views = await store.audit.entries(action="view-list")
    finally:
        await store.close()
    assert views and {e.actor for e in views} == {f"practitioner:{stack.peer_id}"}


async def test_delivered_at_is_shown(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    stack = _stack(sandbox_ehr, tmp_path, jwks)
    async with serve(stack) as client:
        peer = bearer(make_token(practitioner_id=stack.peer_id))
        resp = await client.post("/api/v1/encounters", json=encounter_for(stack), headers=peer)
        assert resp.status == 202, await resp.text()
        url = (await resp.json())["status_url"]
        assert (await (await client.get(url, headers=peer)).json())["delivered_at"] is None

        async def delivered() -> dict[str, Any] | None:
            view: dict[str, Any] = await (await client.get(url, headers=peer)).json()
            return view if view["state"] == "delivered" else None

        view = await _until(delivered)
        assert view is not None and view["delivered_at"] is not None
        assert view["created_at"] <= view["delivered_at"] <= view["updated_at"]


async def test_warnings_on_held_notes_are_kept(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    """A provisional peer whose supervision is overdue: the note waits for a co-sign (hold) and
    the overdue supervision is a warning, in the 202 and in the submission's view."""
    stack = _stack(sandbox_ehr, tmp_path, jwks)
    overdue = (date.today() - timedelta(days=60)).isoformat()
    prov = add_peer(stack, f"prov-{uuid.uuid4().hex[:6]}", level="provisional", last_supervision=overdue)
    async with serve(stack) as client:
        author = bearer(make_token(practitioner_id=prov))
        session = {**encounter_for(stack), "peer_id": prov}
        assert (await client.post("/api/v1/encounters", json=session, headers=author)).status == 202
        note = {
            "id": f"note-{uuid.uuid4().hex[:8]}",
            "participant_id": stack.participant_id,
            "author_id": prov,
            "encounter_id": session["id"],
            "audience": "care-team",
            "text": "Worked on the housing application together.",
            "written_at": "2026-03-02T15:00:00-06:00",
        }
        resp = await client.post("/api/v1/notes", json=note, headers=author)
        assert resp.status == 202, await resp.text()
        body = await resp.json()
        assert body["state"] == "held"
        assert [w["rule"] for w in body["warnings"]] == ["supervision.recency"]
        view = await (await client.get(body["status_url"], headers=author)).json()
        assert view["hold_rules"] == ["supervision.cosign"] or "supervision.cosign" in view["hold_rules"]
        assert [w["rule"] for w in view["warnings"]] == ["supervision.recency"]
