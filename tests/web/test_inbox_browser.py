"""The peer inbox in headless Chromium (Debian's, through Playwright): what a peer actually does.

A screenshot is saved to ``test-results/`` when one of these fails.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Locator, Page, expect

from bridge.domain import ReferralStatus
from bridge.exchange.wiring import ExchangeService
from tests.web import payloads, seed
from tests.web.accounts import Account, sign_in
from tests.web.conftest import CHROMIUM, TokenFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


BLOCKED = "Told her to cut her dose to 8 mg last week."  # content.medication-change: block
BLOCKED_WORDS = "cut her dose to 8 mg"


def peer(inbox: Inbox, make_token: TokenFactory) -> Account:
    return Account(inbox.url, "Jordan Reyes", "peer-specialist", "peer-1", make_token())


@dataclass
class Inbox:
    url: str
    exchange: ExchangeService
    ref_a: str  # two referrals waiting: a's contact is Jordan Testperson
    ref_b: str

    def card(self, page: Page, rid: str, css: str = "") -> Locator:
        return page.locator(f'[id="referral-{rid}"] {css}'.strip())

    async def submitted(self) -> list[str]:
        return [s.record_id for s in await self.exchange.submissions.list()]


@pytest.fixture
async def inbox(client: TestClient[Any, Any], exchange: ExchangeService) -> Inbox:
    ref_a = await seed.referral(exchange, name=("Jordan", "Testperson"))
    ref_b = await seed.referral(exchange)
    return Inbox(str(client.make_url("")).rstrip("/"), exchange, ref_a, ref_b)


async def test_peer_accepts_and_declines_referrals(
    browser_page: Page, inbox: Inbox, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, peer(inbox, make_token))
    card = inbox.card(page, inbox.ref_a)
    await expect(card.get_by_role("heading")).to_contain_text("Jordan Testperson")
    await expect(card.locator(".status")).to_have_text("New")
    await card.get_by_role("button", name="Accept").click()
    await expect(page.locator("#notice")).to_contain_text("Accepted: Jordan Testperson's referral")
    await expect(page.locator(".status").first).to_have_text("Accepted")
    await expect(page.get_by_role("button", name="Start services")).to_be_visible()

    await page.goto(f"{inbox.url}/inbox/referrals/{inbox.ref_b}")
    await page.get_by_label("Reason for declining").select_option("Outside our service area")
    await page.get_by_role("button", name="Decline").click()
    await expect(page.locator(".status").first).to_have_text("Declined")
    # the Task's status reason is free text at the clinic: the peer view keeps only its codes (issue 10 #5)
    await expect(page.locator("main")).not_to_contain_text("Outside our service area")
    declined = (await inbox.exchange.store.inbox.get(inbox.ref_b)).referral
    assert declined.status is ReferralStatus.REJECTED
    task = await inbox.exchange.clients["clinic"].read_raw(f"Task/{declined.task_id}")
    assert task["statusReason"]["text"] == "Outside our service area"


async def test_decline_without_reason_is_stopped_by_the_form(
    browser_page: Page, inbox: Inbox, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, peer(inbox, make_token))
    await page.goto(f"{inbox.url}/inbox/referrals/{inbox.ref_b}")
    await page.get_by_role("button", name="Decline").click()
    reason = page.locator(f'[id="decline-reason-{inbox.ref_b}"]')
    assert await reason.evaluate("el => el.validity.valueMissing") is True
    # the required field kept the browser on the page: nothing reached the exchange
    actions = await inbox.exchange.store.audit.entries(subject=inbox.ref_b)
    assert [e.action for e in actions if e.action.startswith("referral.")] == []
    await expect(page.locator(".status").first).to_have_text("New")


async def test_note_gets_live_scope_feedback_and_blocked_note_shows_reasons(
    browser_page: Page, inbox: Inbox, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, peer(inbox, make_token))
    before = await inbox.submitted()
    await page.get_by_role("link", name="My notes", exact=True).click()
    await page.get_by_role("link", name="Write the note").first.click()  # the session waiting for one
    text = page.get_by_label("Note", exact=True)
    await text.fill("We talked about housing options.")
    feedback = page.locator("#note-feedback")
    await expect(feedback).to_have_attribute("data-verdict", "allow")
    await expect(feedback).to_contain_text("within peer scope")

    await text.fill(BLOCKED)
    await expect(feedback).to_have_attribute("data-verdict", "block")
    await expect(feedback).to_contain_text("medication")  # in plain words
    await expect(feedback).to_contain_text(BLOCKED_WORDS)
    await expect(feedback.locator("details")).to_contain_text("content.medication-change")  # behind a toggle
    await expect(page.locator("#note-marked mark")).to_contain_text(BLOCKED_WORDS)
    assert await inbox.submitted() == before  # checking stores nothing

    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#error")).to_contain_text("can't be sent as written")
    await expect(page.locator("#error-violations")).to_contain_text(BLOCKED_WORDS)
    await expect(page.get_by_label("Note", exact=True)).to_have_value(BLOCKED)
    assert await inbox.submitted() == before

    await page.get_by_label("Note", exact=True).fill("Made a plan to visit the recovery center together.")
    await page.get_by_role("button", name="Submit note").click()
    await expect(page.locator("#notice")).to_contain_text("on its way to the clinic")
    await expect(page.locator("#note-state")).to_have_text("Sending")


async def test_a_referral_for_someone_the_directory_does_not_know_says_so(
    browser_page: Page, inbox: Inbox, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, peer(inbox, make_token))
    await inbox.card(page, inbox.ref_a).get_by_role("button", name="Accept").click()
    await page.get_by_role("link", name="Log a session").click()
    await expect(page.locator("#no-participant")).to_contain_text(
        "not in your organization's participant list"
    )
    await expect(page.locator("#session-form")).to_have_count(0)


async def test_every_form_control_has_a_label(
    browser_page: Page, inbox: Inbox, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, peer(inbox, make_token))
    paths = [
        "/inbox",
        "/inbox/caseload",
        "/inbox/my-notes",
        f"/inbox/referrals/{inbox.ref_a}",
        f"/inbox/notes/new?session={payloads.SESSION}",
    ]
    for path in paths:
        await page.goto(inbox.url + path)
        unlabeled = await page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                  .map(el => el.id || el.name)"""
        )
        assert unlabeled == [], path
        assert await page.evaluate("document.documentElement.lang") == "en"


async def test_keyboard_only_skip_link_visible_focus_and_accept(
    browser_page: Page, inbox: Inbox, make_token: TokenFactory
) -> None:
    page = browser_page
    await sign_in(page, peer(inbox, make_token))
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    assert await skip.evaluate("el => el.getBoundingClientRect().left >= 0")  # shown when focused
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    # tab to the first referral's Accept button and press it, with a visible focus ring on the way
    accept = page.locator(f'[id="accept-{inbox.ref_a}"]')
    for _ in range(15):
        await page.keyboard.press("Tab")
        if await accept.evaluate("el => el === document.activeElement"):
            break
    await expect(accept).to_be_focused()
    outline = await accept.evaluate("el => getComputedStyle(el).outlineWidth")
    assert float(outline.removesuffix("px")) >= 2
    await page.keyboard.press("Enter")
    await expect(page.locator("#notice")).to_contain_text("Accepted: Jordan Testperson")
