"""The inbox page's supervision queue over plain HTTP (no browser), on the real exchange: who sees
held notes, the co-sign and escalation forms, and what the peer is told on a hold."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aiohttp.test_utils import TestClient

from bridge.exchange.wiring import ExchangeService
from bridge.web.csrf import form_token
from tests.web import payloads
from tests.web.conftest import TokenFactory, bearer

Client = TestClient[Any, Any]
TEXT = "Said she keeps thinking about suicide <b>tonight</b>; we called her supervisor together."


def _csrf(client: Client) -> str:
    """The form token the page puts in its forms (an HMAC of the session cookie)."""
    cookies = client.session.cookie_jar.filter_cookies(client.make_url("/"))
    return form_token(cookies["bridge_session"].value)


async def _sign_in(client: Client, credential: str) -> None:
    resp = await client.post("/inbox/login", data={"credential": credential}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def _held(client: Client, token: str, note: dict[str, Any]) -> str:
    resp = await client.post("/api/v1/notes", json=note, headers=bearer(token))
    assert resp.status == 202 and (await resp.json())["state"] == "held", await resp.text()
    return str((await resp.json())["submission_id"])


async def _state(exchange: ExchangeService, sid: str) -> str:
    return (await exchange.submissions.get(sid)).state


async def test_supervisor_sees_held_notes_escaped_and_cosigns(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    author = make_token(practitioner_id=payloads.PROVISIONAL)
    sid = await _held(client, author, payloads.provisional_note("Talked about <b>tonight</b>."))
    risky = await _held(client, make_token(), payloads.note(text=TEXT))
    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-1"))
    html = await (await client.get("/inbox")).text()
    assert 'id="held-h"' in html and f'id="cosign-{sid}"' in html
    assert f'id="escalate-{sid}"' not in html  # only a co-sign resolves this one
    assert f'id="escalate-{risky}"' in html  # a risk-of-harm hold can be resolved by an escalation
    # risk first, then the oldest
    assert html.index(f'id="held-{risky}"') < html.index(f'id="held-{sid}"')
    note = await (await client.get(f"/inbox/notes/{sid}")).text()  # the note's page shows its text
    assert "&lt;b&gt;tonight&lt;/b&gt;" in note and "<b>tonight" not in note

    resp = await client.post(
        f"/inbox/notes/{sid}/cosign", data={"csrf_token": _csrf(client)}, allow_redirects=False
    )
    assert resp.status == 303
    assert "Co-signed: the note is on its way" in unquote_plus(resp.headers["Location"])
    assert await _state(exchange, sid) == "queued"
    again = await client.post(
        f"/inbox/notes/{sid}/cosign", data={"csrf_token": _csrf(client)}, allow_redirects=False
    )
    assert again.status == 409 and "not_held" in await again.text()


async def test_escalation_form_needs_a_reference(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    sid = await _held(client, make_token(), payloads.note(text=TEXT))
    await _sign_in(client, make_token("peer-supervisor", practitioner_id="sup-1"))
    bad = await client.post(
        f"/inbox/notes/{sid}/escalation", data={"escalation_ref": "phoned her", "csrf_token": _csrf(client)}
    )
    assert bad.status == 422 and await _state(exchange, sid) == "held"
    assert "escalation_ref" in await bad.text()
    ok = await client.post(
        f"/inbox/notes/{sid}/escalation",
        data={"escalation_ref": "Task/esc-9", "csrf_token": _csrf(client)},
        allow_redirects=False,
    )
    assert ok.status == 303 and await _state(exchange, sid) == "queued"


async def test_a_peer_is_told_the_note_is_held_and_sees_no_queue(
    client: Client, exchange: ExchangeService, make_token: TokenFactory
) -> None:
    sid = await _held(client, make_token(), payloads.note(text=TEXT))
    await _sign_in(client, make_token())
    html = await (await client.get("/inbox")).text()
    assert 'id="held-h"' not in html
    form = {
        "id": "note-page-1",
        "participant_id": payloads.PARTICIPANT,
        "encounter_id": payloads.SESSION,
        "audience": "care-team",
        "text": TEXT,
    }
    resp = await client.post(
        "/inbox/notes", data={**form, "csrf_token": _csrf(client)}, allow_redirects=False
    )
    assert resp.status == 303, await resp.text()
    assert "It mentions a risk of harm" in unquote_plus(resp.headers["Location"])
    refused = await client.post(
        f"/inbox/notes/{sid}/cosign", data={"csrf_token": _csrf(client)}, allow_redirects=False
    )
    assert refused.status == 403 and (await refused.json())["rule"] == "role:peer-specialist"
    assert await _state(exchange, sid) == "held"
    entries = [e for e in await exchange.store.audit.entries(subject=sid) if e.outcome == "refused"]
    # the refused attempt goes to the audit log
    assert [(e.action, e.detail and e.detail["rule"]) for e in entries] == [
        ("note.cosign", "role:peer-specialist")
    ]
