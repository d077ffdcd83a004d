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

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from bridge_dev.idp import CALLBACK_PATH, Account


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def sign_in(page: Any, account: Account, base_url: str | None = None) -> None:
    """Sign ``account`` in through the provider's own pages, starting from the bridge's sign-in
    page (``base_url``, or the origin of the bridge page the browser is on). Ends on ``/inbox``."""
    bridge = (base_url or _origin(page.url)).rstrip("/")
    await page.goto(f"{bridge}/inbox")
    await page.click("#sign-in")
    await page.wait_for_selector("#username")
    await page.fill("#username", account.username)
    await page.fill("#password", account.password)
    async with page.expect_navigation(url=f"{bridge}/inbox"):
        await page.click("form[action$='/login'] button[type=submit]")
    await page.wait_for_load_state("domcontentloaded")


async def authorize(
    http: httpx.AsyncClient, bridge_url: str, account: Account, *, password: str | None = None
) -> str:
    """Start a sign-in at the bridge and sign in at the provider's form over HTTP; return the
    URL the provider sends the browser back to (the bridge's callback), without visiting it."""
    resp = await http.get(f"{bridge_url}/inbox/signin", follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return await through_provider(http, resp.headers["Location"], account, password=password)


async def through_provider(
    http: httpx.AsyncClient, url: str, account: Account, *, password: str | None = None
) -> str:
    """From an authorization request URL, sign in at the provider's form; return the redirect back
    to the client's callback (not visited), or "" when the provider refused the password."""
    posted = False
    for _ in range(12):  # provider: /auth -> /interaction/<uid> (the form) -> /auth/<uid> -> callback
        if urlsplit(url).path == CALLBACK_PATH:
            return url  # (straight back when the provider still has a session of this browser)
        resp = await http.get(url, follow_redirects=False)
        if resp.status_code in (302, 303):
            url = urljoin(url, resp.headers["Location"])
            continue
        assert resp.status_code == 200 and 'name="password"' in resp.text and not posted, resp.text[:500]
        action = re.search(r'action="(/interaction/[^"]+/login)"', resp.text)
        assert action is not None
        resp = await http.post(
            urljoin(url, action.group(1)),
            data={"username": account.username, "password": password or account.password},
            follow_redirects=False,
        )
        if resp.status_code != 303:
            return ""  # refused at the provider (wrong password)
        posted = True
        url = urljoin(url, resp.headers["Location"])
    raise AssertionError("the provider never sent the browser back to the bridge")


async def sign_in_http(http: httpx.AsyncClient, bridge_url: str, account: Account) -> httpx.Response:
    """The whole sign-in over HTTP; the answer of the bridge's callback (200, session cookie set)."""
    callback = await authorize(http, bridge_url, account)
    return await http.get(callback, follow_redirects=False)
