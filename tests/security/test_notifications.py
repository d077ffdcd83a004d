"""Issue 10, attack 6: notifications bypassed the owner filter. With the notify token, a
notification naming another organization's Task (or a ``PUT /fhir/notify/Task/{id}``) pulled it into
our inbox; a forged heartbeat with ``events-since-subscription-start`` = 10**30 ended gap detection.
Now the fetched Task must name our organization as owner, and an implausible count is a gap (a
catch-up poll), never the new baseline."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from bridge.domain import Referral, ReferralStatus
from bridge.mappers import referral_id_for, referral_to_fhir
from bridge.store import open_store
from bridge.web.keys import EXCHANGE
from bridge_dev.demo import peer_organization_ref
from bridge_dev.sandbox import Sandbox
from tests.security.conftest import eventually
from tests.web.conftest import NOTIFY_TOKEN, bearer
from tests.web.stack import Stack, environment, serve, write_stack

Client = TestClient[Any, Any]


@pytest.fixture
async def notified(sandbox_ehr: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Client, Stack, str]]:
    """The bridge with its notification endpoint on (polling otherwise, every 15 minutes), and our
    organization's reference at the EHR."""
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    text = stack.config.read_text().replace(
        '[server]\nhost = "127.0.0.1"\n',
        '[server]\nhost = "127.0.0.1"\nnotification_token_env = "BRIDGE_TEST_NOTIFY_TOKEN"\n',
    )
    assert "notification_token_env" in text
    stack.config.write_text(text)
    with environment(stack) as settings:  # before the bridge starts: its start-up poll makes it too
        async with httpx.AsyncClient(base_url=sandbox_ehr.base_url + "/", timeout=30) as http:
            ours = await peer_organization_ref(http, settings)
    async with serve(stack, BRIDGE_TEST_NOTIFY_TOKEN=NOTIFY_TOKEN) as client:
        yield client, stack, ours


async def _place(ehr: Sandbox, stack: Stack, owner: str) -> str:
    """A ServiceRequest and a Task owned by ``owner`` at the EHR: the Task id."""
    tag = uuid.uuid4().hex[:8]
    ref = Referral(
        id=f"r-{tag}",
        endpoint="clinic",
        task_id=f"task-{tag}",
        service_request_id=f"sr-{tag}",
        status=ReferralStatus.REQUESTED,
        patient_id=stack.patient_id,
        reason="Wants a peer to meet after discharge",
    )
    async with httpx.AsyncClient(base_url=ehr.base_url + "/", timeout=30) as http:
        for res in referral_to_fhir(ref, owner_ref=owner):
            res.get("meta", {}).pop("versionId", None)
            (await http.put(f"{res['resourceType']}/{res['id']}", json=res)).raise_for_status()
    return ref.task_id


async def _other_organization(ehr: Sandbox) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        made = await http.post(
            f"{ehr.base_url}/Organization", json={"resourceType": "Organization", "name": "Another clinic"}
        )
    return f"Organization/{made.raise_for_status().json()['id']}"


def _bundle(kind: str, count: int, focus: str | None = None, number: int | None = None) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(count)},
    ]
    if focus is not None:
        params.append(
            {
                "name": "notification-event",
                "part": [
                    {"name": "event-number", "valueString": str(number or count)},
                    {"name": "focus", "valueReference": {"reference": focus}},
                ],
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "history",
        "entry": [{"resource": {"resourceType": "Parameters", "parameter": params}}],
    }


async def _in_inbox(client: Client, stack: Stack, task_id: str) -> bool:
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    resp = await client.get(f"/api/v1/referrals/{referral_id_for('clinic', task_id)}", headers=key)
    return resp.status == 200


async def test_another_organizations_task_is_not_admitted(
    notified: tuple[Client, Stack, str], sandbox_ehr: Sandbox
) -> None:
    client, stack, ours = notified
    theirs = await _place(sandbox_ehr, stack, await _other_organization(sandbox_ehr))
    mine = await _place(sandbox_ehr, stack, ours)  # the near miss: ours comes in the same way
    token = bearer(NOTIFY_TOKEN)
    for task in (theirs, mine):
        resp = await client.post(
            "/fhir/notify", json=_bundle("event-notification", 1, f"Task/{task}"), headers=token
        )
        assert resp.status == 200, await resp.text()
    async with httpx.AsyncClient(timeout=30) as http:
        task_body = (await http.get(f"{sandbox_ehr.base_url}/Task/{theirs}")).json()
    resp = await client.put(f"/fhir/notify/Task/{theirs}", json=task_body, headers=token)
    assert resp.status == 200, await resp.text()

    assert await eventually(lambda: _in_inbox(client, stack, mine))
    assert not await _in_inbox(client, stack, theirs)
    store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")
    try:
        skipped = await store.audit.entries(subject=f"Task/{theirs}", action="receive.skipped")
    finally:
        await store.close()
    assert [(e.detail or {}).get("code") for e in skipped][:1] == ["not_owned"]


async def test_a_forged_event_count_does_not_end_gap_detection(
    notified: tuple[Client, Stack, str], sandbox_ehr: Sandbox
) -> None:
    client, stack, ours = notified
    token = bearer(NOTIFY_TOKEN)
    forged = await client.post("/fhir/notify", json=_bundle("heartbeat", 10**30), headers=token)
    assert forged.status == 200, await forged.text()
    inbound = client.app[EXCHANGE].inbound

    async def settled() -> bool:
        check = inbound.subs["clinic"].gap_check
        return check is not None and check.done()

    assert await eventually(settled)
    assert inbound.subs["clinic"].seen < 10**30  # not taken as the baseline

    # a real gap afterwards: a referral placed at the EHR whose event never reached us, then a
    # heartbeat counting it. Gap detection must still bring it in (the next poll is 15 minutes away)
    missed = await _place(sandbox_ehr, stack, ours)
    assert not await _in_inbox(client, stack, missed)
    resp = await client.post("/fhir/notify", json=_bundle("heartbeat", 1), headers=token)
    assert resp.status == 200, await resp.text()
    assert await eventually(lambda: _in_inbox(client, stack, missed))
