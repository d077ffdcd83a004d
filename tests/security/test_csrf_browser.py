"""Issue 10, attack 4 in a real browser: a page on another port of the same host (same site, so
Chromium sends the SameSite=Strict cookie) auto-submits the inbox's accept form for the signed-in
peer. The bridge refuses it (403 ``csrf_refused``) and the Task does not move at the EHR."""

from __future__ import annotations

import os

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from bridge.mappers import referral_id_for
from tests.security.conftest import People, task_status
from tests.web.conftest import CHROMIUM, browser_page

__all__ = ["browser_page"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
        reason="Debian chromium is not installed (make test installs it)",
    ),
]


async def _evil_page(target: str) -> TestServer:
    """The attacker's page: a form posting to ``target``, submitted as soon as it loads."""
    html = (
        f'<!doctype html><form id="f" method="post" action="{target}">'
        '<input name="reason" value="x"></form><script>document.getElementById("f").submit()</script>'
    )

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_page_on_another_port_cannot_accept_for_the_signed_in_peer(
    browser_page: Page, with_referral: People
) -> None:
    p, page = with_referral, browser_page
    [task_id] = p.tasks
    rid = referral_id_for("clinic", task_id)
    url = str(p.client.make_url("")).rstrip("/")
    await page.goto(f"{url}/inbox")
    await page.get_by_label("Access token from your organization").fill(
        p.make_token(practitioner_id=p.certified)
    )
    await page.get_by_role("button", name="Sign in").click()
    card = page.locator(f"#referral-{rid}")
    for _ in range(50):  # the start-up poll runs beside the first page load
        if await card.count():
            break
        await page.wait_for_timeout(200)
        await page.reload()
    assert await card.count() == 1

    evil = await _evil_page(f"{url}/inbox/referrals/{rid}/accept")
    try:
        async with page.expect_response(lambda r: r.url.endswith(f"/inbox/referrals/{rid}/accept")) as info:
            await page.goto(str(evil.make_url("/")))
        answer = await info.value
        assert answer.status == 403
        assert (await answer.json())["code"] == "csrf_refused"
        sent = await answer.request.all_headers()
        assert "bridge_session=" in sent.get("cookie", "")  # the cookie did ride along
    finally:
        await evil.close()
    assert await task_status(p, task_id) == "requested"  # nothing moved at the EHR
