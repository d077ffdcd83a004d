"""The inbox page over plain HTTP (no browser): sign-in, rendering, escaping, forms."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bridge.exchange.wiring import ExchangeService
from bridge.web.csrf import form_token
from tests.web import payloads, seed
from tests.web.conftest import API_KEYS, TokenFactory

BLOCKED = "Told her to cut her dose to 8 mg."  # content.medication-change: block

Client = TestClient[Any, Any]


def _csrf(client: Client) -> str:
    """The form token the page puts in its forms (an HMAC of the session cookie)."""
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    return form_token(cookies["bridge_session"].value)


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
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    rid = await seed.referral(exchange, name=("<script>alert(1)</script>", "Quinn"))
    await _sign_in(client, make_token())
    resp = await client.get("/inbox")
    html = await resp.text()
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert f'id="accept-{rid}"' in html


async def test_cookie_alone_does_not_reach_the_api(client: Client, make_token: TokenFactory) -> None:
    await _sign_in(client, make_token())
    resp = await client.get("/api/v1/referrals")
    assert resp.status == 401
    resp = await client.get("/api/v1/referrals", headers={"X-Bridge-Inbox": "1"})
    assert resp.status == 200


async def test_decline_form_records_the_reason(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    rid = await seed.referral(exchange)
    await _sign_in(client, make_token())
    resp = await client.post(
        f"/inbox/referrals/{rid}/decline", data={"reason": "outside our county", "csrf_token": _csrf(client)}
    )
    assert resp.status == 200  # followed the redirect back to the page
    entry = await exchange.store.inbox.get(rid)
    # the reason reached the clinic's Task; the peer view keeps only coded status reasons
    task = await exchange.clients["clinic"].read_raw(f"Task/{entry.referral.task_id}")
    assert task["statusReason"]["text"] == "outside our county" and entry.referral.status_reason is None
    assert "Declined: Avery Quinn&#39;s referral." in await resp.text()


async def test_blocked_note_is_shown_again_with_its_reasons(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    before = len(await exchange.submissions.list())
    await _sign_in(client, make_token())
    form = {
        "id": "n-1",
        "participant_id": payloads.PARTICIPANT,
        "encounter_id": payloads.SESSION,
        "audience": "care-team",
        "text": BLOCKED,
    }
    resp = await client.post("/inbox/notes", data={**form, "csrf_token": _csrf(client)})
    html = await resp.text()
    assert resp.status == 422
    # in plain words, the words that blocked it marked in the text; the rule id behind "Details"
    assert "content.medication-change" in html and "<mark" in html and "cut her dose to 8 mg</mark>" in html
    assert re.search(r'<textarea[^>]*id="n-text"[^>]*>Told her to cut her dose to 8 mg.</textarea>', html)
    assert len(await exchange.submissions.list()) == before


async def test_session_form_queues_and_shows_status(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    await _sign_in(client, make_token())
    form = [
        ("id", "s-1"),
        ("participant_id", payloads.PARTICIPANT),
        ("start", "2026-03-02T14:00"),
        ("end", "2026-03-02T14:45"),
        ("tz", "-06:00"),
        ("setting", "community"),
        ("location_name", "Drop-in"),
        ("method", "phone"),
        ("activities", "recovery-coaching"),
        ("activities", "advocacy"),
    ]
    resp = await client.post("/inbox/encounters", data=[*form, ("csrf_token", _csrf(client))])
    html = await resp.text()
    assert resp.status == 200 and 'id="submissions"' in html and "queued" in html
    assert [s.record_id for s in await exchange.submissions.list()][-1] == "s-1"
