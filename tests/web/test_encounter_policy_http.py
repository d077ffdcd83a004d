"""``POST /api/v1/encounters`` on the real stack (sandbox EHR, ExchangeService, SQLite, rule files):
a session the policy blocks answers 422 with its violations and queues nothing; one it warns
about is accepted (202) with the warnings in the answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge_dev.sandbox import Sandbox
from tests.web.stack import Stack, encounter_for, serve, write_stack

Client = TestClient[Any, Any]


@pytest.fixture
async def live(sandbox_ehr: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Client, Stack]]:
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    people = json.loads(stack.directory.read_text())
    [participant] = people["participants"]
    # a second person who lives in the peer's household: a dual relationship
    people["participants"].append(
        participant | {"id": f"{participant['id']}-kin", "household_id": f"h-{participant['id']}"}
    )
    people["peers"][0]["household_id"] = f"h-{participant['id']}"
    stack.directory.write_text(json.dumps(people))
    async with serve(stack) as client:
        yield client, stack


async def test_a_dual_relationship_is_refused_and_nothing_is_queued(live: tuple[Client, Stack]) -> None:
    client, stack = live
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    session = encounter_for(stack) | {"participant_id": f"{stack.participant_id}-kin", "id": "enc-kin"}
    resp = await client.post("/api/v1/encounters", json=session, headers=key)
    body = await resp.json()
    assert resp.status == 422, body
    assert body["code"] == "scope_violation"
    assert [(v["rule"], v["field"]) for v in body["violations"]] == [
        ("assignment.dual-relationship", "household")
    ]
    ops = {"X-API-Key": stack.env["BRIDGE_TEST_OPS_KEY"]}
    outbox = await (await client.get("/api/v1/outbox", headers=ops)).json()
    assert "enc-kin" not in {i["record_id"] for i in outbox["items"]}


async def test_a_billing_warning_is_accepted_with_it(live: tuple[Client, Stack]) -> None:
    client, stack = live
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    short = encounter_for(stack, 1) | {"billable": True, "end": "2026-03-02T14:05:00-06:00"}
    resp = await client.post("/api/v1/encounters", json=short, headers=key)
    body = await resp.json()
    assert resp.status == 202, body
    assert [w["rule"] for w in body["warnings"]] == ["billing.zero-units"]
    assert body["warnings"][0]["severity"] == "warn"
    # the warning stays visible after the 202: the submission view shows it (no evidence)
    view = await (await client.get(body["status_url"], headers=key)).json()
    assert [(w["rule"], w["severity"]) for w in view["warnings"]] == [("billing.zero-units", "warn")]
    assert view["warnings"][0]["message"] == body["warnings"][0]["message"]
    assert "evidence" not in view["warnings"][0] or view["warnings"][0]["evidence"] is None

    # near miss: 45 minutes is three units, nothing to say
    whole = encounter_for(stack, 2) | {"billable": True}
    resp = await client.post("/api/v1/encounters", json=whole, headers=key)
    body = await resp.json()
    assert resp.status == 202 and body["warnings"] == []
    assert (await (await client.get(body["status_url"], headers=key)).json())["warnings"] == []
