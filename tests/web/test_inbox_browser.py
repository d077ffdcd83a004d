"""The peer inbox in headless Chromium (Debian's, through Playwright): what a peer actually does.

A screenshot is saved to ``test-results/`` when one of these fails.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, expect

from bridge.config import Settings
from bridge.domain import ReferralContact, ReferralStatus
from bridge.web import create_app
from bridge.web.auth import Authenticator
from tests.web.conftest import CHROMIUM, ORG, TokenFactory
from tests.web.fakes import BLOCKED_WORD, FakeService, factory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


@pytest.fixture
def inbox_service() -> FakeService:
    service = FakeService(organization=ORG)
    service.add_referral("ref-a")
    service.add_referral("ref-b")
    item = service.referrals["ref-a"]
    contact = ReferralContact.model_validate({"name": {"given": "Jordan", "family": "Testperson"}})
    service.referrals["ref-a"] = item.__class__(item.referral.model_copy(update={"contact": contact}), ORG)
    return service


@pytest.fixture
async def app_url(settings: Settings, inbox_service: FakeService, jwks: dict[str, Any]) -> AsyncIterator[str]:
    auth = Authenticator.from_settings(settings, jwks=jwks)
    server = TestServer(
        create_app(settings, service_factory=factory(inbox_service), authenticator=auth), host="127.0.0.1"
    )
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def sign_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/inbox")
    await page.get_by_label("Access token from your organization").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Peer inbox")).to_be_visible()


async def test_peer_accepts_and_declines_referrals(
    browser_page: Page, app_url: str, make_token: TokenFactory, inbox_service: FakeService
) -> None:
    page = browser_page
    await sign_in(page, app_url, make_token())
    card = page.locator("#referral-ref-a")
    await expect(card.get_by_role("heading")).to_contain_text("Jordan Testperson")
    await expect(card.locator(".status")).to_have_text("requested")
    await card.get_by_role("button", name="Accept").click()
    await expect(page.locator("#notice")).to_contain_text("ref-a: accept done")
    await expect(page.locator("#referral-ref-a .status")).to_have_text("accepted")
    await expect(page.locator("#referral-ref-a").get_by_role("button", name="Start services")).to_be_visible()

    other = page.locator("#referral-ref-b")
    await other.get_by_label("Reason for declining").fill("outside our service area")
    await other.get_by_role("button", name="Decline").click()
    await expect(page.locator("#referral-ref-b .status")).to_have_text("rejected")
    await expect(page.locator("#referral-ref-b")).to_contain_text("outside our service area")
    assert inbox_service.referrals["ref-b"].referral.status is ReferralStatus.REJECTED


async def test_decline_without_reason_is_stopped_by_the_form(
    browser_page: Page, app_url: str, make_token: TokenFactory, inbox_service: FakeService
) -> None:
    page = browser_page
    await sign_in(page, app_url, make_token())
    await page.locator("#referral-ref-b").get_by_role("button", name="Decline").click()
    reason = page.locator("#decline-reason-ref-b")
    assert await reason.evaluate("el => el.validity.valueMissing") is True
    # the required field kept the browser on the page: nothing reached the service
    assert inbox_service.calls == []
    await expect(page.locator("#referral-ref-b .status")).to_have_text("requested")


async def test_note_gets_live_scope_feedback_and_blocked_note_shows_reasons(
    browser_page: Page, app_url: str, make_token: TokenFactory, inbox_service: FakeService
) -> None:
    page = browser_page
    await sign_in(page, app_url, make_token())
    await page.get_by_label("Note id").fill("note-live-1")
    await page.get_by_label("Participant id").last.fill("part-1")
    text = page.get_by_label("Note", exact=True)
    await text.fill("We talked about housing options.")
    feedback = page.locator("#note-feedback")
    await expect(feedback).to_have_attribute("data-verdict", "allow")
    await expect(feedback).to_contain_text("Within peer scope")

    blocked = f"Person was {BLOCKED_WORD} something last year."
    await text.fill(blocked)
    await expect(feedback).to_have_attribute("data-verdict", "block")
    await expect(feedback).to_contain_text("no-diagnosis")
    await expect(feedback).to_contain_text(BLOCKED_WORD)
    assert inbox_service.submissions == {}  # checking stores nothing

    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#error")).to_contain_text("scope_violation")
    await expect(page.locator("#error-violations")).to_contain_text(BLOCKED_WORD)
    await expect(page.get_by_label("Note", exact=True)).to_have_value(blocked)
    assert inbox_service.submissions == {}

    await page.get_by_label("Note", exact=True).fill("Made a plan to visit the recovery center together.")
    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#notice")).to_contain_text("Note note-live-1 queued")
    await expect(page.locator("#submissions .state")).to_have_text("queued")


async def test_peer_logs_a_session(
    browser_page: Page, app_url: str, make_token: TokenFactory, inbox_service: FakeService
) -> None:
    page = browser_page
    await sign_in(page, app_url, make_token())
    await page.get_by_label("Session id", exact=True).fill("sess-1")
    await page.get_by_label("Participant id").first.fill("part-1")
    await page.get_by_label("Referral", exact=True).select_option("ref-a")
    await page.get_by_label("Start").fill("2026-03-02T14:00")
    await page.get_by_label("End", exact=True).fill("2026-03-02T14:45")
    await page.get_by_label("Setting").select_option("community")
    await page.get_by_label("Location").fill("Drop-in center")
    await page.get_by_label("recovery-coaching").check()
    await page.get_by_role("button", name="Log session").click()
    await expect(page.locator("#notice")).to_contain_text("Session sess-1 queued")
    await expect(page.locator("#submissions")).to_contain_text("encounter")
    assert inbox_service.calls == ["submit_encounter:sess-1"]


async def test_every_form_control_has_a_label(
    browser_page: Page, app_url: str, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, app_url, make_token())
    unlabeled = await page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map(el => el.id || el.name)"""
    )
    assert unlabeled == []
    assert await page.evaluate("document.documentElement.lang") == "en"
