"""Signing in through the real OpenID Provider (``dev/idp``, started by the ``oidc_provider``
fixture), for any test that needs a signed-in browser or HTTP client.

In a browser (Playwright's async page)::

    await page.goto(f"{bridge.url}/inbox")
    await sign_in(page, oidc_provider.account("peer"))        # ends on /inbox, signed in

Over plain HTTP (an ``httpx.AsyncClient`` keeps the cookies of the bridge and the provider)::

    callback = await authorize(http, bridge.url, account)     # up to the provider's redirect back
    resp = await http.get(callback)                            # the bridge's callback: session set

Accounts: ``peer`` (peer-1), ``provisional`` (prov-1, supervised by sup-1), ``supervisor`` (sup-1),
``integrator`` (no inbox); their user names and passwords are ``account.username`` / ``.password``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bridge_dev.idp import Account, authorize, sign_in_http, through_provider

__all__ = ["authorize", "sign_in", "sign_in_http", "through_provider"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def sign_in(page: Any, account: Account, base_url: str | None = None) -> None:
    """Sign ``account`` in through the provider's own pages, starting from the bridge's sign-in
    page (``base_url``, or the origin of the bridge page the browser is on). Ends on ``/inbox``."""
    if base_url is None and not str(page.url).startswith("http"):
        raise ValueError("sign_in: open a bridge page first, or pass base_url")
    bridge = (base_url or _origin(page.url)).rstrip("/")
    await page.goto(f"{bridge}/inbox")
    await page.click("#sign-in")
    await page.wait_for_selector("#username")
    await page.fill("#username", account.username)
    await page.fill("#password", account.password)
    async with page.expect_navigation(url=f"{bridge}/inbox"):
        await page.click("form[action$='/login'] button[type=submit]")
    await page.wait_for_load_state("domcontentloaded")


