"""The inbox page on the real stack: a referral placed at the sandbox EHR, accepted in Chromium,
the Task moved at the EHR, a session logged from the page and delivered as an Encounter."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from bridge.config import load_settings
from bridge.mappers import referral_id_for
from bridge.web import create_app
from bridge_dev.demo import peer_organization_ref, place_referral
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import CHROMIUM, TokenFactory
from tests.web.stack import Stack, write_stack

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


@pytest.fixture
async def real_app(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Stack, str]]:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "bridge", port=0, jwks_file=jwks_file)
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_DIRECTORY", str(stack.directory))
    settings = load_settings(stack.config)
    tag = uuid.uuid4().hex[:8]
    # the clinic places the referral first; the bridge's first poll at start-up picks it up
    async with httpx.AsyncClient(base_url=sandbox_ehr.base_url + "/", timeout=30) as ehr:
        owner = await peer_organization_ref(ehr, settings)
        task_id = await place_referral(ehr, tag=tag, patient_id=stack.patient_id, owner_ref=owner)
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), stack, task_id
    finally:
        await server.close()


async def test_peer_accepts_a_real_referral_and_logs_a_session(
    browser_page: Page, real_app: tuple[str, Stack, str], make_token: TokenFactory, sandbox_ehr: Sandbox
) -> None:
    url, stack, task_id = real_app
    referral_id = referral_id_for("clinic", task_id)
    page = browser_page
    await page.goto(f"{url}/inbox")
    await page.get_by_label("Access token from your organization").fill(
        make_token(practitioner_id=stack.peer_id)
    )
    await page.get_by_role("button", name="Sign in").click()

    card = page.locator(f"#referral-{referral_id}")
    for _ in range(50):  # the start-up poll runs beside the first page load
        if await card.count():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(card).to_contain_text("Recovery support after an emergency department visit")
    await card.get_by_role("button", name="Accept").click()
    await expect(page.locator(f"#referral-{referral_id} .status")).to_have_text("accepted")
    async with httpx.AsyncClient(timeout=30) as ehr:
        task = (await ehr.get(f"{sandbox_ehr.base_url}/Task/{task_id}")).json()
    assert task["status"] == "accepted"

    await page.get_by_label("Session id", exact=True).fill(f"enc-{task_id}")
    await page.get_by_label("Participant id").first.fill(stack.participant_id)
    await page.get_by_label("Referral", exact=True).select_option(referral_id)
    await page.get_by_label("Start").fill("2026-03-02T14:00")
    await page.get_by_label("End", exact=True).fill("2026-03-02T14:45")
    await page.get_by_label("Location").fill("Drop-in center")
    await page.get_by_label("recovery-coaching").check()
    await page.get_by_role("button", name="Log session").click()
    await expect(page.locator("#notice")).to_contain_text(f"Session enc-{task_id} queued")
    state = page.locator("#submissions .state")
    for _ in range(100):  # delivery runs in the background; the page shows it on refresh
        if await state.text_content() == "delivered":
            break
        await page.wait_for_timeout(200)
        await page.get_by_role("link", name="Refresh status").click()
    await expect(state).to_have_text("delivered")
    await expect(page.locator("#submissions")).to_contain_text("Encounter/")
