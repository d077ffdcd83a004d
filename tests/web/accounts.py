"""Who signs in to the workspace in browser tests, and how: ``sign_in(page, account)`` is the one
place that knows the sign-in mechanism: through the real OpenID Provider's own pages when the
account has a provider login (``tests.web.signin``), else by pasting a token on the token form (a
bridge without ``[identity_provider]``)."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.async_api import Page, expect

from bridge_dev.idp import Account as ProviderLogin
from tests.web.signin import sign_in as sign_in_at_provider


@dataclass(frozen=True)
class Account:
    """A person of the peer organization: who they are and how they sign in."""

    base_url: str
    name: str  # as the pages greet them
    role: str
    practitioner_id: str
    token: str = ""  # for the token form (no identity provider)
    login: ProviderLogin | None = None  # user name and password at the OpenID Provider


async def sign_in(page: Page, account: Account) -> None:
    """Sign ``account`` in through the pages, leaving the browser on the workspace's home page."""
    if account.login is not None:
        await sign_in_at_provider(page, account.login, account.base_url)
    else:
        await page.goto(f"{account.base_url}/inbox")
        await page.get_by_label("Access token from your organization").fill(account.token)
        await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Peer inbox", exact=True)).to_be_visible()


async def sign_out(page: Page) -> None:
    """Sign out of the bridge, and of the provider when it asks (else its session would sign the
    next person in as the last one)."""
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_load_state("domcontentloaded")
    if "/session/end" in page.url:
        await page.click("button[value=yes]")
        await page.wait_for_url("**/inbox")
