"""The operations page on the real stack (issue 14): a session for a patient the EHR does not know
yet is refused by the sandbox EHR and dead-lettered; the integrator signs in on ``/ops`` in
Chromium, sees the endpoint's state and the dead letter with its reason, the clinic registers the
patient, and the integrator retries the dead letter from the page: it is delivered, and the retry
is in the audit log. The retry form is CSRF-guarded like the inbox's."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from bridge.store import open_store
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import CHROMIUM
from tests.web.stack import MRN, Stack, serve, write_stack

browser = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
    reason="Debian chromium is not installed (make test installs it)",
)


def _unknown_patient(stack: Stack) -> tuple[str, str]:
    """A participant in the directory whose Patient the EHR does not have (yet): (id, MRN)."""
    tag = uuid.uuid4().hex[:8]
    data = json.loads(stack.directory.read_text())
    pid, mrn = f"pt-new-{tag}", f"MRN-new-{tag}"
    data["participants"].append(
        {
            "id": pid,
            "name": {"given": "New", "family": "Participant"},
            "identifiers": {"clinic": {"system": MRN, "value": mrn}},
            "home_endpoint": "clinic",
        }
    )
    stack.directory.write_text(json.dumps(data))
    return pid, mrn


async def _state(client: TestClient[Any, Any], stack: Stack, sid: str) -> str:
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    return str((await (await client.get(f"/api/v1/submissions/{sid}", headers=key)).json())["state"])


async def _until(client: TestClient[Any, Any], stack: Stack, sid: str, state: str) -> str:
    now = ""
    for _ in range(300):
        now = await _state(client, stack, sid)
        if now == state:
            break
        await asyncio.sleep(0.1)
    return now


@pytest.fixture
async def dead_letter(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any]
) -> AsyncIterator[tuple[TestClient[Any, Any], Stack, str, str]]:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "bridge", port=0, jwks_file=jwks_file)
    pid, mrn = _unknown_patient(stack)
    async with serve(stack) as client:
        body = {
            "id": f"enc-{pid}",
            "participant_id": pid,
            "peer_id": stack.peer_id,
            "start": "2026-03-02T14:00:00-06:00",
            "end": "2026-03-02T14:45:00-06:00",
            "setting": "community",
            "location_name": "Harbor drop-in center",
            "activities": ["recovery-coaching"],
            "billable": False,
        }
        resp = await client.post(
            "/api/v1/encounters", json=body, headers={"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
        )
        assert resp.status == 202, await resp.text()
        sid = (await resp.json())["submission_id"]
        assert await _until(client, stack, sid, "dead") == "dead"
        yield client, stack, sid, mrn


@browser
@pytest.mark.browser
async def test_integrator_retries_a_dead_letter_from_the_page(
    browser_page: Page, dead_letter: tuple[TestClient[Any, Any], Stack, str, str], sandbox_ehr: Sandbox
) -> None:
    client, stack, sid, mrn = dead_letter
    url = str(client.make_url("")).rstrip("/")
    page = browser_page
    await page.goto(f"{url}/ops")
    await page.get_by_label("Operator API key").fill(stack.env["BRIDGE_TEST_OPS_KEY"])
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.locator("#endpoint-clinic-h")).to_contain_text("clinic")
    await expect(page.locator("#endpoint-clinic-breaker")).to_contain_text("closed")
    await expect(page.locator("#endpoint-clinic-last-success")).to_contain_text("ago")
    await expect(page.locator("#endpoint-clinic-subscription")).to_contain_text("polling only")
    await expect(page.locator("#endpoint-clinic-backlog")).to_contain_text("1 dead")
    row = page.locator(f"#dead-{sid}")
    await expect(row).to_contain_text("encounter")
    await expect(row.locator(".reason")).not_to_be_empty()  # the EHR's refusal, by status and code
    reason = await row.locator(".reason").inner_text()
    assert "[" in reason and "Participant" not in reason  # an error code, never the person

    # the clinic registers the patient; now the same session can go
    async with httpx.AsyncClient(timeout=30) as ehr:
        created = await ehr.post(
            f"{sandbox_ehr.base_url}/Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": MRN, "value": mrn}],
                "name": [{"family": "Participant", "given": ["New"]}],
            },
        )
        assert created.status_code == 201
    await row.get_by_role("button", name=f"Retry {sid}").click()
    await expect(page.locator("#notice")).to_contain_text(f"{sid} is queued again")
    assert await _until(client, stack, sid, "delivered") == "delivered"
    await page.reload()
    await expect(page.locator(f"#dead-{sid}")).to_have_count(0)

    store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")
    try:
        entries = await store.audit.entries(subject=sid)
    finally:
        await store.close()
    retried = [e for e in entries if e.action == "outbox.retry"]
    assert len(retried) == 1 and retried[0].actor == "api_key:ops"


async def test_retry_needs_the_page_token_and_the_ops_role(
    dead_letter: tuple[TestClient[Any, Any], Stack, str, str],
) -> None:
    client, stack, sid, _ = dead_letter
    # signed in with the operator's key (the cookie), a post without the page's token is refused
    login = await client.post(
        "/ops/login", data={"credential": stack.env["BRIDGE_TEST_OPS_KEY"]}, allow_redirects=False
    )
    assert login.status == 303
    forged = await client.post(f"/ops/outbox/{sid}/retry", data={}, allow_redirects=False)
    assert forged.status == 403 and (await forged.json())["code"] == "csrf_refused"
    cross = await client.post(
        f"/ops/outbox/{sid}/retry", data={}, headers={"Origin": "http://evil.example"}, allow_redirects=False
    )
    assert cross.status == 403
    # a peer may not retry, nor see the page
    peer = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    client.session.cookie_jar.clear()
    assert (await client.post(f"/ops/outbox/{sid}/retry", headers=peer, allow_redirects=False)).status == 403
    assert (await client.get("/ops", headers=peer)).status == 403
    assert await _state(client, stack, sid) == "dead"  # nothing was requeued
