"""The inbox page on the real stack: a referral placed at the sandbox EHR, accepted in Chromium,
the Task moved at the EHR, a session logged from the page and delivered as an Encounter."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from bridge.mappers import referral_id_for
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import CHROMIUM, TokenFactory
from tests.web.stack import Stack, place_referrals, serve, write_stack

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


@pytest.fixture
async def real_app(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any]
) -> AsyncIterator[tuple[str, Stack, str]]:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "bridge", port=0, jwks_file=jwks_file)
    # the clinic places the referral first; the bridge's first poll at start-up picks it up
    [task_id] = await place_referrals(stack, sandbox_ehr)
    async with serve(stack) as client:
        yield str(client.make_url("")).rstrip("/"), stack, task_id


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
    await expect(card).to_contain_text("Dr. Sam Patel")
    # the clinician's free-text reason stays at the clinic (issue 10 #5, minimum necessary)
    await expect(card).not_to_contain_text("Recovery support after an emergency department visit")
    await card.get_by_role("button", name="Accept").click()
    await expect(page.locator(f"#referral-{referral_id} .status")).to_have_text("Accepted")
    async with httpx.AsyncClient(timeout=30) as ehr:
        task = (await ehr.get(f"{sandbox_ehr.base_url}/Task/{task_id}")).json()
    assert task["status"] == "accepted"

    # from the referral's page: the person, the referral and the times are prefilled
    await page.get_by_role("link", name="Log a session").click()
    await expect(page.locator("#s-who")).to_have_text("Test Participant")
    await page.get_by_label("Place").fill("Drop-in center")
    await page.get_by_role("button", name="Save session and write the note").click()
    await expect(page.get_by_role("heading", name="Write the note")).to_be_visible()
    await page.goto(f"{url}/inbox/referrals/{referral_id}")
    state = page.locator("section[aria-labelledby=sessions-h] .state").first
    for _ in range(100):  # delivery runs in the background; the page shows it on reload
        if await state.text_content() == "sent":
            break
        await page.wait_for_timeout(200)
        await page.reload()
    await expect(state).to_have_text("sent")
    async with httpx.AsyncClient(timeout=30) as ehr:
        found = (
            await ehr.get(
                f"{sandbox_ehr.base_url}/Encounter", params={"subject": f"Patient/{stack.patient_id}"}
            )
        ).json()
    assert any(
        (e["resource"].get("location") or [{}])[0].get("location", {}).get("display") == "Drop-in center"
        for e in found.get("entry") or []
    )
