"""The inbox page over plain HTTP (no browser): sign-in, rendering, escaping, forms."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.web.conftest import API_KEYS, TokenFactory
from tests.web.fakes import BLOCKED_WORD, FakeService

Client = TestClient[Any, Any]


async def _sign_in(client: Client, credential: str) -> None:
    resp = await client.post("/inbox/login", data={"credential": credential}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def test_unauthenticated_gets_the_sign_in_form(client: Client) -> None:
    resp = await client.get("/inbox")
    assert resp.status == 401
    assert 'name="credential"' in await resp.text()


async def test_bad_credential_is_refused(client: Client) -> None:
    resp = await client.post("/inbox/login", data={"credential": "a.b.c"}, allow_redirects=False)
    assert resp.status == 401 and 'role="alert"' in await resp.text()


async def test_integrator_may_not_use_the_inbox(client: Client) -> None:
    resp = await client.post("/inbox/login", data={"credential": API_KEYS["ops"]}, allow_redirects=False)
    assert resp.status == 403


async def test_page_lists_referrals_escaped_and_is_not_cached(
    client: Client, service: FakeService, make_token: TokenFactory
) -> None:
    service.add_referral("r-1")
    ref = service.referrals["r-1"].referral.model_copy(update={"reason": "<script>alert(1)</script>"})
    service.referrals["r-1"] = service.referrals["r-1"].__class__(ref, service.organization)
    await _sign_in(client, make_token())
    resp = await client.get("/inbox")
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert 'id="accept-r-1"' in html


async def test_cookie_alone_does_not_reach_the_api(client: Client, make_token: TokenFactory) -> None:
    await _sign_in(client, make_token())
    resp = await client.get("/api/v1/referrals")
    assert resp.status == 401
    resp = await client.get("/api/v1/referrals", headers={"X-Bridge-Inbox": "1"})
    assert resp.status == 200


async def test_decline_form_records_the_reason(
    client: Client, service: FakeService, make_token: TokenFactory
) -> None:
    service.add_referral("r-2")
    await _sign_in(client, make_token())
    resp = await client.post("/inbox/referrals/r-2/decline", data={"reason": "outside our county"})
    assert resp.status == 200  # followed the redirect back to the page
    assert service.referrals["r-2"].referral.status_reason == "outside our county"
    assert "r-2: decline done" in await resp.text()


async def test_blocked_note_is_shown_again_with_its_reasons(
    client: Client, service: FakeService, make_token: TokenFactory
) -> None:
    await _sign_in(client, make_token())
    form = {"id": "n-1", "participant_id": "p-1", "audience": "care-team", "text": f"was {BLOCKED_WORD} x"}
    resp = await client.post("/inbox/notes", data=form)
    html = await resp.text()
    assert resp.status == 422
    assert "no-diagnosis" in html and BLOCKED_WORD in html
    assert re.search(r'<textarea[^>]*id="n-text"[^>]*>was diagnosed with x</textarea>', html)
    assert service.submissions == {}


async def test_session_form_queues_and_shows_status(
    client: Client, service: FakeService, make_token: TokenFactory
) -> None:
    await _sign_in(client, make_token())
    form = [
        ("id", "s-1"),
        ("participant_id", "p-1"),
        ("start", "2026-03-02T14:00"),
        ("end", "2026-03-02T14:45"),
        ("tz", "-06:00"),
        ("setting", "community"),
        ("location_name", "Drop-in"),
        ("method", "phone"),
        ("activities", "recovery-coaching"),
        ("activities", "advocacy"),
    ]
    resp = await client.post("/inbox/encounters", data=form)
    html = await resp.text()
    assert resp.status == 200 and 'id="submissions"' in html and "queued" in html
    assert service.calls == ["submit_encounter:s-1"]
