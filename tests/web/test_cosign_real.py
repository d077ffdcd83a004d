"""Held notes and co-sign on the real stack (sandbox EHR, ExchangeService, SQLite, rule files):
a provisional peer's note is answered 202 held and not sent; only the author's supervisor in the
same organization co-signs (API and, in Chromium, the inbox page); then it is delivered as final."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from bridge.store import open_store
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import CHROMIUM, OTHER_ORG, TokenFactory, bearer
from tests.web.stack import Stack, add_peer, encounter_for, serve, write_stack

Client = TestClient[Any, Any]
NOTE_TEXT = "Worked on the housing application together; next step is a call to the benefits office."
NOTE_SYSTEM = "https://harbor-recovery.example.org/fhir/id/note"


@dataclass
class Held:
    client: Client
    stack: Stack
    peer: str  # provisional: their notes wait for a co-sign
    supervisor: str  # the peer's supervisor
    other_supervisor: str  # same organization, supervises someone else
    submission_id: str
    note_id: str


@pytest.fixture
async def held(
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    make_token: TokenFactory,
) -> AsyncIterator[Held]:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "bridge", port=0, jwks_file=jwks_file)
    tag = uuid.uuid4().hex[:8]
    sup = add_peer(stack, f"sup-{tag}", role="peer-supervisor", level="supervisor")
    other = add_peer(stack, f"sup2-{tag}", role="peer-supervisor", level="supervisor")
    peer = add_peer(stack, f"prov-{tag}", level="provisional", supervisor_id=sup)
    async with serve(stack) as client:
        author = bearer(make_token(practitioner_id=peer))
        enc = {**encounter_for(stack), "id": f"enc-{tag}", "peer_id": peer}
        resp = await client.post("/api/v1/encounters", json=enc, headers=author)
        assert resp.status == 202, await resp.text()
        note = {
            "id": f"note-{tag}",
            "participant_id": stack.participant_id,
            "author_id": peer,
            "encounter_id": enc["id"],
            "audience": "care-team",
            "text": NOTE_TEXT,
            "written_at": "2026-03-02T15:00:00-06:00",
        }
        # the dry run says "hold" before the peer submits (not a softened "warn"), and stores nothing
        check = await client.post("/api/v1/notes/check", json=note, headers=author)
        assert check.status == 200, await check.text()
        verdict = await check.json()
        assert verdict["verdict"] == "hold"
        assert [v["rule"] for v in verdict["violations"]] == ["supervision.cosign"]
        resp = await client.post("/api/v1/notes", json=note, headers=author)
        assert resp.status == 202, await resp.text()
        body = await resp.json()
        assert body["state"] == "held"
        assert [r["rule"] for r in body["hold_reasons"]] == ["supervision.cosign"]
        yield Held(client, stack, peer, sup, other, body["submission_id"], note["id"])


async def _state(client: Client, token: str, sid: str) -> str:
    body = await (await client.get(f"/api/v1/submissions/{sid}", headers=bearer(token))).json()
    return str(body["state"])


async def _docs(base_url: str, note_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(f"{base_url}/DocumentReference", params={"identifier": f"{NOTE_SYSTEM}|{note_id}"})
    return [e["resource"] for e in r.json().get("entry", [])]


async def test_only_the_authors_supervisor_cosigns_then_it_is_delivered_once(
    held: Held, make_token: TokenFactory, sandbox_ehr: Sandbox
) -> None:
    c, sid = held.client, held.submission_id
    sup_token = make_token("peer-supervisor", practitioner_id=held.supervisor)
    refused = [
        (make_token(practitioner_id=held.peer), "role:peer-specialist"),
        (make_token("peer-supervisor", OTHER_ORG, practitioner_id=held.supervisor), "same-organization"),
        (make_token("peer-supervisor", practitioner_id=held.other_supervisor), "cosign.supervisor"),
    ]
    for token, rule in refused:
        resp = await c.post(f"/api/v1/notes/{sid}/cosign", headers=bearer(token))
        assert resp.status == 403, await resp.text()
        assert (await resp.json())["rule"] == rule

    other = await c.get("/api/v1/notes/held", headers=bearer(refused[2][0]))
    assert (await other.json())["items"] == []  # not theirs to co-sign
    mine = await (await c.get("/api/v1/notes/held", headers=bearer(sup_token))).json()
    assert [(i["submission_id"], i["note"]["text"]) for i in mine["items"]] == [(sid, NOTE_TEXT)]
    assert await _state(c, sup_token, sid) == "held"
    assert await _docs(sandbox_ehr.base_url, held.note_id) == []  # held: never sent

    resp = await c.post(f"/api/v1/notes/{held.note_id}/cosign", headers=bearer(sup_token))
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["submission_id"] == sid
    again = await c.post(f"/api/v1/notes/{sid}/cosign", headers=bearer(sup_token))
    assert again.status == 409 and (await again.json())["code"] == "not_held"
    unknown = await c.post("/api/v1/notes/note-never-sent/cosign", headers=bearer(sup_token))
    assert unknown.status == 404 and (await unknown.json())["code"] == "not_found"

    for _ in range(150):  # the background worker delivers it
        if await _state(c, sup_token, sid) == "delivered":
            break
        await asyncio.sleep(0.1)
    assert await _state(c, sup_token, sid) == "delivered"
    docs = await _docs(sandbox_ehr.base_url, held.note_id)
    assert len(docs) == 1 and docs[0]["docStatus"] == "final"


async def test_the_author_sees_their_held_note_waiting_for_cosign(
    held: Held, make_token: TokenFactory
) -> None:
    c, sid = held.client, held.submission_id
    author = make_token(practitioner_id=held.peer)
    mine = await c.get("/api/v1/notes/held/mine", headers=bearer(author))
    assert mine.status == 200, await mine.text()
    items = (await mine.json())["items"]
    assert [(i["submission_id"], i["note"]["id"]) for i in items] == [(sid, held.note_id)]
    assert [r["rule"] for r in items[0]["hold_reasons"]] == ["supervision.cosign"]
    # near misses: another peer of the organization, and the supervisor, wrote none of them
    other_peer = bearer(make_token(practitioner_id=held.stack.peer_id))
    assert (await (await c.get("/api/v1/notes/held/mine", headers=other_peer)).json())["items"] == []
    sup = make_token("peer-supervisor", practitioner_id=held.supervisor)
    assert (await (await c.get("/api/v1/notes/held/mine", headers=bearer(sup))).json())["items"] == []

    # the inbox page: "waiting for co-sign" with the tracking id and the rule it waits for
    login = await c.post("/inbox/login", data={"credential": author}, allow_redirects=False)
    assert login.status == 303, await login.text()
    html = await (await c.get("/inbox")).text()
    assert "Your notes not sent yet" in html and f'id="mine-{sid}"' in html
    assert "Waiting for your supervisor to co-sign" in html and NOTE_TEXT not in html

    resp = await c.post(f"/api/v1/notes/{sid}/cosign", headers=bearer(sup))
    assert resp.status == 202, await resp.text()
    assert (await (await c.get("/api/v1/notes/held/mine", headers=bearer(author))).json())["items"] == []
    assert f'id="mine-{sid}"' not in await (await c.get("/inbox")).text()


async def test_refused_cosigns_and_escalations_are_in_the_audit_log(
    held: Held, make_token: TokenFactory
) -> None:
    c, sid = held.client, held.submission_id
    stranger = make_token("peer-supervisor", practitioner_id=held.other_supervisor)
    resp = await c.post(f"/api/v1/notes/{sid}/cosign", headers=bearer(stranger))
    assert resp.status == 403 and (await resp.json())["rule"] == "cosign.supervisor"  # the exchange's
    # refused by the caller's role or organization before the exchange: on record all the same,
    # under the submission the note id names
    author = make_token(practitioner_id=held.peer)
    resp = await c.post(f"/api/v1/notes/{held.note_id}/cosign", headers=bearer(author))
    assert resp.status == 403 and (await resp.json())["rule"] == "role:peer-specialist"
    outsider = make_token("peer-specialist", OTHER_ORG, practitioner_id=held.peer)
    resp = await c.post(
        f"/api/v1/notes/{sid}/escalation", json={"escalation_ref": "Task/e-1"}, headers=bearer(outsider)
    )
    assert resp.status == 403 and (await resp.json())["rule"] == "same-organization"

    store = await open_store(f"sqlite+aiosqlite:///{held.stack.store_file}")
    try:
        entries = [e for e in await store.audit.entries(subject=sid) if e.action.startswith("note.")]
    finally:
        await store.close()
    assert [(e.action, e.outcome, e.actor, (e.detail or {}).get("rule")) for e in entries] == [
        ("note.cosign", "refused", f"practitioner:{held.other_supervisor}", "cosign.supervisor"),
        ("note.cosign", "refused", f"practitioner:{held.peer}", "role:peer-specialist"),
        ("note.escalation", "refused", f"practitioner:{held.peer}", "same-organization"),
    ]


async def test_a_blocked_note_is_refused_and_cannot_be_cosigned(held: Held, make_token: TokenFactory) -> None:
    author = bearer(make_token(practitioner_id=held.peer))
    note = {
        "id": f"note-blocked-{uuid.uuid4().hex[:6]}",
        "participant_id": held.stack.participant_id,
        "author_id": held.peer,
        "encounter_id": f"enc-{held.note_id.removeprefix('note-')}",
        "audience": "care-team",
        "text": "She was diagnosed with F11.20 last year.",
        "written_at": "2026-03-02T15:00:00-06:00",
    }
    resp = await held.client.post("/api/v1/notes", json=note, headers=author)
    assert resp.status == 422 and (await resp.json())["code"] == "scope_violation"
    sup = bearer(make_token("peer-supervisor", practitioner_id=held.supervisor))
    resp = await held.client.post(f"/api/v1/notes/{note['id']}/cosign", headers=sup)
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"


@pytest.mark.browser
@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and os.environ.get("CI", "").lower() != "true",
    reason="Debian chromium is not installed (make test installs it)",
)
async def test_supervisor_cosigns_from_the_inbox_page(
    browser_page: Page, held: Held, make_token: TokenFactory, sandbox_ehr: Sandbox
) -> None:
    url = str(held.client.make_url("")).rstrip("/")
    page = browser_page
    await page.goto(f"{url}/inbox")
    await page.get_by_label("Access token from your organization").fill(
        make_token("peer-supervisor", practitioner_id=held.supervisor)
    )
    await page.get_by_role("button", name="Sign in").click()

    card = page.locator(f"#held-{held.submission_id}")
    await expect(page.get_by_role("heading", name="Notes to review")).to_be_visible()
    await expect(card).to_contain_text("Test Participant")
    await expect(card.locator(".reasons")).to_contain_text("held until a supervisor co-signs")
    await card.get_by_role("link", name="Read and decide").click()
    await expect(page.locator("#note-text")).to_contain_text(NOTE_TEXT)
    await page.get_by_role("button", name="Co-sign").click()
    await expect(page.locator("#notice")).to_contain_text("Co-signed: the note is on its way")
    await expect(page.locator(f"#held-{held.submission_id}")).to_have_count(0)

    state = page.locator("#submissions .state")
    for _ in range(100):  # delivery runs in the background; the page shows it on refresh
        if await state.text_content() == "sent":
            break
        await page.wait_for_timeout(200)
        await page.get_by_role("link", name="Refresh", exact=True).click()
    await expect(state).to_have_text("sent")
    docs = await _docs(sandbox_ehr.base_url, held.note_id)
    assert len(docs) == 1 and docs[0]["docStatus"] == "final"
