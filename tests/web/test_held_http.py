"""The held-note routes' HTTP contract (202 held with reasons, co-sign, escalation, error codes),
on the real exchange (rule files, SQLite store)."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.web import payloads
from tests.web.conftest import TokenFactory, bearer

Client = TestClient[Any, Any]
RISK = "Said she keeps thinking about suicide; we called her supervisor together."


async def _held(client: Client, token: str, note: dict[str, Any], rule: str) -> str:
    resp = await client.post("/api/v1/notes", json=note, headers=bearer(token))
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["state"] == "held"
    assert [r["rule"] for r in body["hold_reasons"]] == [rule]
    assert resp.headers["Location"] == body["status_url"]
    return str(body["submission_id"])


async def test_a_held_note_answers_202_held_and_a_supervisor_releases_it(
    client: Client, make_token: TokenFactory
) -> None:
    author = make_token(practitioner_id=payloads.PROVISIONAL)
    sid = await _held(client, author, payloads.provisional_note(), "supervision.cosign")
    sup = bearer(make_token("peer-supervisor", practitioner_id="sup-1"))
    listed = await (await client.get("/api/v1/notes/held", headers=sup)).json()
    assert [i["submission_id"] for i in listed["items"]] == [sid]
    assert listed["items"][0]["hold_reasons"][0]["rule"] == "supervision.cosign"

    ops = bearer(make_token("integrator", practitioner_id=None))
    view = await (await client.get(f"/api/v1/submissions/{sid}", headers=ops)).json()
    assert view["state"] == "held" and view["hold_rules"] == ["supervision.cosign"]

    resp = await client.post(f"/api/v1/notes/{sid}/cosign", headers=sup)
    assert resp.status == 202 and (await resp.json())["state"] == "queued"
    again = await client.post(f"/api/v1/notes/{sid}/cosign", headers=sup)
    assert again.status == 409 and (await again.json())["code"] == "not_held"
    unknown = await client.post("/api/v1/notes/sub-nope/cosign", headers=sup)
    assert unknown.status == 404 and (await unknown.json())["code"] == "not_found"


async def test_escalation_needs_a_task_or_communication(client: Client, make_token: TokenFactory) -> None:
    sid = await _held(client, make_token(), payloads.note(text=RISK), "content.risk-of-harm")
    peer = bearer(make_token())
    bad = await client.post(
        f"/api/v1/notes/{sid}/escalation", json={"escalation_ref": "phoned"}, headers=peer
    )
    assert bad.status == 422 and (await bad.json())["field"] == "escalation_ref"
    ok = await client.post(
        f"/api/v1/notes/{sid}/escalation", json={"escalation_ref": "Communication/c-1"}, headers=peer
    )
    assert ok.status == 202 and (await ok.json())["state"] == "queued"


async def test_a_peer_cannot_cosign_or_list_held_notes(client: Client, make_token: TokenFactory) -> None:
    sid = await _held(client, make_token(), payloads.note(text=RISK), "content.risk-of-harm")
    peer = bearer(make_token())
    for resp in (
        await client.post(f"/api/v1/notes/{sid}/cosign", headers=peer),
        await client.get("/api/v1/notes/held", headers=peer),
    ):
        assert resp.status == 403
        assert (await resp.json())["rule"] == "role:peer-specialist"
