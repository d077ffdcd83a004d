"""Each of the four accounts signs in through the real provider's own pages in headless Chromium
(Debian's, through Playwright), lands on the page meant for them, and signs out again (at the
bridge and at the provider). A screenshot is saved to ``test-results/`` when one fails."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.async_api import expect

from tests.web.conftest import CHROMIUM, SigninBridge
from tests.web.signin import sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]

# what each account sees once signed in: a heading of the inbox, or the page for roles without one
LANDS_ON = {
    "peer": "#referrals-h",
    "provisional": "#referrals-h",
    "supervisor": "#nav-queue",
    "integrator": "#signed-in-as",
}


async def _cookies(page: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in await page.context.cookies()}


@pytest.mark.parametrize("kind", sorted(LANDS_ON))
async def test_each_account_signs_in_at_the_provider_and_out_again(
    browser_page: Any, signin_bridge: SigninBridge, kind: str
) -> None:
    page = browser_page
    account = signin_bridge.idp.account(kind)
    await page.goto(f"{signin_bridge.url}/inbox")
    await expect(page.locator("#sign-in")).to_be_visible()
    await sign_in(page, account)
    assert page.url == f"{signin_bridge.url}/inbox"
    await expect(page.locator(LANDS_ON[kind])).to_be_visible()
    if kind != "supervisor":
        await expect(page.locator("#nav-queue")).to_have_count(0)
    session = (await _cookies(page))["bridge_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"

    await page.click("form[action='/inbox/logout'] button[type=submit]")
    await page.wait_for_url(f"{signin_bridge.idp.issuer}/session/end**")  # the provider asks
    await page.click("button[value=yes]")
    await page.wait_for_url(f"{signin_bridge.url}/inbox")  # and sends the browser back
    await expect(page.locator("#sign-in")).to_be_visible()
    assert "bridge_session" not in await _cookies(page)
    # signed out at the provider too: signing in again asks for the password
    await page.click("#sign-in")
    await expect(page.locator("#password")).to_be_visible()


async def test_a_wrong_password_stays_at_the_provider(browser_page: Any, signin_bridge: SigninBridge) -> None:
    page = browser_page
    await page.goto(f"{signin_bridge.url}/inbox")
    await page.click("#sign-in")
    await page.fill("#username", signin_bridge.idp.account("peer").username)
    await page.fill("#password", "not-the-password")
    await page.click("form[action$='/login'] button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    assert "bridge_session" not in await _cookies(page)
