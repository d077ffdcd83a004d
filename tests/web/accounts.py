"""Who signs in to the workspace in browser tests, and how: ``sign_in(page, account)`` is the one
place that knows the sign-in mechanism (today: pasting the identity provider's token on the sign-in
page), so the OpenID Connect sign-in can replace it here alone."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Page, expect


@dataclass(frozen=True)
class Account:
    """A person of the peer organization: who they are and the credential they sign in with."""

    base_url: str
    name: str  # as the pages greet them
    role: str
    practitioner_id: str
    token: str


async def sign_in(page: Page, account: Account) -> None:
    """Sign ``account`` in through the page, leaving the browser on the workspace's home page."""
    await page.goto(f"{account.base_url}/inbox")
    await page.get_by_label("Access token from your organization").fill(account.token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Peer inbox", exact=True)).to_be_visible()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
