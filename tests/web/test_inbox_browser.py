"""The peer inbox in headless Chromium (Debian's, through Playwright): what a peer actually does.

A screenshot is saved to ``test-results/`` when one of these fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from bridge.config import settings_from_dict
from bridge.domain import ReferralContact, ReferralStatus
from bridge.web import create_app
from bridge.web.auth import Authenticator
from tests.web.conftest import CHROMIUM, ORG, TokenFactory, settings_dict
from tests.web.fakes import BLOCKED_WORD, FakeService, factory
from tests.web.live import serve_in_thread

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
    pytest.mark.usefixtures("screenshot_on_failure"),
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
def app_url(inbox_service: FakeService, jwks: dict[str, Any]) -> Iterator[str]:
    mp = pytest.MonkeyPatch()
    for var in ("BRIDGE_TEST_OPS_KEY", "BRIDGE_TEST_OTHER_KEY", "BRIDGE_TEST_NOTIFY_TOKEN"):
        mp.setenv(var, f"{var.lower()}-value-123")
    s = settings_from_dict(settings_dict())
    app = create_app(s, service_factory=factory(inbox_service),
                     authenticator=Authenticator.from_settings(s, jwks=jwks))
    with serve_in_thread(app) as url:
        yield url
    mp.undo()


def sign_in(page: Page, app_url: str, token: str) -> None:
    page.goto(f"{app_url}/inbox")
    page.get_by_label("Access token from your organization").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Peer inbox")).to_be_visible()


def test_peer_accepts_and_declines_referrals(
    page: Page, app_url: str, make_token: TokenFactory, inbox_service: FakeService
) -> None:
    sign_in(page, app_url, make_token())
    card = page.locator("#referral-ref-a")
    expect(card.get_by_role("heading")).to_contain_text("Jordan Testperson")
    expect(card.locator(".status")).to_have_text("requested")
    card.get_by_role("button", name="Accept").click()
    expect(page.locator("#notice")).to_contain_text("ref-a: accept done")
    expect(page.locator("#referral-ref-a .status")).to_have_text("accepted")
    expect(page.locator("#referral-ref-a").get_by_role("button", name="Start services")).to_be_visible()

    other = page.locator("#referral-ref-b")
    other.get_by_label("Reason for declining").fill("outside our service area")
    other.get_by_role("button", name="Decline").click()
    expect(page.locator("#referral-ref-b .status")).to_have_text("rejected")
    expect(page.locator("#referral-ref-b")).to_contain_text("outside our service area")
    assert inbox_service.referrals["ref-b"].referral.status is ReferralStatus.REJECTED


def test_decline_without_reason_is_stopped_by_the_form(page: Page, app_url: str, make_token: TokenFactory,
                                                       inbox_service: FakeService) -> None:
    sign_in(page, app_url, make_token())
    page.locator("#referral-ref-b").get_by_role("button", name="Decline").click()
    # the required field keeps the browser on the page: nothing reached the service
    assert inbox_service.calls == []
    expect(page.locator("#referral-ref-b .status")).to_have_text("requested")


def test_note_gets_live_scope_feedback_and_blocked_note_shows_reasons(
    page: Page, app_url: str, make_token: TokenFactory, inbox_service: FakeService
) -> None:
    sign_in(page, app_url, make_token())
    page.get_by_label("Note id").fill("note-live-1")
    page.get_by_label("Participant id").last.fill("part-1")
    text = page.get_by_label("Note", exact=True)
    text.fill("We talked about housing options.")
    feedback = page.locator("#note-feedback")
    expect(feedback).to_have_attribute("data-verdict", "allow")
    expect(feedback).to_contain_text("Within peer scope")

    text.fill(f"Person was {BLOCKED_WORD} something last year.")
    expect(feedback).to_have_attribute("data-verdict", "block")
    expect(feedback).to_contain_text("no-diagnosis")
    expect(feedback).to_contain_text(BLOCKED_WORD)
    assert inbox_service.submissions == {}  # checking stores nothing

    page.get_by_role("button", name="Submit note").click()
    expect(page.locator("#error")).to_contain_text("scope_violation")
    expect(page.locator("#error-violations")).to_contain_text(BLOCKED_WORD)
    blocked = f"Person was {BLOCKED_WORD} something last year."
    expect(page.get_by_label("Note", exact=True)).to_have_value(blocked)
    assert inbox_service.submissions == {}

    page.get_by_label("Note", exact=True).fill("Made a plan to visit the recovery center together.")
    page.get_by_role("button", name="Submit note").click()
    expect(page.locator("#notice")).to_contain_text("Note note-live-1 queued")
    expect(page.locator("#submissions .state")).to_have_text("queued")


def test_peer_logs_a_session(page: Page, app_url: str, make_token: TokenFactory,
                             inbox_service: FakeService) -> None:
    sign_in(page, app_url, make_token())
    page.get_by_label("Session id", exact=True).fill("sess-1")
    page.get_by_label("Participant id").first.fill("part-1")
    page.get_by_label("Referral", exact=True).select_option("ref-a")
    page.get_by_label("Start").fill("2026-03-02T14:00")
    page.get_by_label("End", exact=True).fill("2026-03-02T14:45")
    page.get_by_label("Setting").select_option("community")
    page.get_by_label("Location").fill("Drop-in center")
    page.get_by_label("recovery-coaching").check()
    page.get_by_role("button", name="Log session").click()
    expect(page.locator("#notice")).to_contain_text("Session sess-1 queued")
    expect(page.locator("#submissions")).to_contain_text("encounter")
    assert inbox_service.calls == ["submit_encounter:sess-1"]


def test_every_form_control_has_a_label(page: Page, app_url: str, make_token: TokenFactory) -> None:
    sign_in(page, app_url, make_token())
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map(el => el.id || el.name)"""
    )
    assert unlabeled == []
    assert page.evaluate("document.documentElement.lang") == "en"
