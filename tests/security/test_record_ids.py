"""Issue 10, attack 1: overwrite by id reuse. A record id belongs to whoever first submitted it:
another person's note id (delivered and co-signed, or held) or session id is 409
``record_id_taken``, on record, and nothing changes (the EHR's copy, the held text, the tracking id)."""

from __future__ import annotations

from bridge.store import OutboxItem
from tests.security.conftest import People


async def _taken(p: People, path: str, body: dict[str, object], headers: dict[str, str]) -> None:
    before, seq = await p.store_view(), await p.last_seq()
    resp = await p.client.post(path, json=body, headers=headers)
    assert resp.status == 409, await resp.text()
    assert (await resp.json())["code"] == "record_id_taken"
    after = await p.store_view()
    # nothing changes: no new item, and the record's own copies as they were
    assert {i.id for i in after[0]} == {i.id for i in before[0]}

    def copies(items: list[OutboxItem]) -> list[tuple[str, object]]:
        return [(i.id, i.payload) for i in items if i.item_key == body["id"]]

    assert copies(after[0]) == copies(before[0])
    refused = [(e.action, e.outcome, (e.detail or {}).get("code")) for e in await p.audit_after(seq)]
    assert ("submit", "refused", "record_id_taken") in refused


async def test_a_delivered_cosigned_note_cannot_be_overwritten_by_another_peer(people: People) -> None:
    p = people
    victim, held = await p.submit_note(p.provisional)
    sid = held["submission_id"]
    sup = p.token(p.supervisor, "peer-supervisor")
    resp = await p.client.post(f"/api/v1/notes/{sid}/cosign", headers=sup)
    assert resp.status == 202, await resp.text()
    assert await p.wait_state(sid, "delivered") == "delivered"
    [doc] = await p.documents(str(victim["id"]))
    assert doc["docStatus"] == "final"

    attacker = p.note(p.certified, await p.session(p.certified), id=victim["id"], text="Overwritten text.")
    await _taken(p, "/api/v1/notes", attacker, p.token(p.certified))
    [after] = await p.documents(str(victim["id"]))
    assert (after["meta"]["versionId"], after["docStatus"]) == (doc["meta"]["versionId"], "final")
    assert after == doc  # the chart's copy untouched


async def test_a_held_note_is_not_released_or_replaced_by_another_peer(people: People) -> None:
    p = people
    victim, held = await p.submit_note(p.provisional)
    sid = held["submission_id"]
    attacker = p.note(
        p.certified, await p.session(p.certified), id=victim["id"], text="Someone else's words."
    )
    await _taken(p, "/api/v1/notes", attacker, p.token(p.certified))
    assert await p.state(sid) == "held"
    items = [i for i in (await p.store_view())[0] if i.item_key == victim["id"]]
    assert [(i.id, i.payload["note"]["text"]) for i in items] == [(sid, victim["text"])]
    assert await p.documents(str(victim["id"])) == []  # never sent


async def test_a_session_id_belongs_to_its_peer(people: People) -> None:
    p = people
    theirs = await p.session(p.provisional)
    await _taken(p, "/api/v1/encounters", p.encounter(p.certified, id=theirs), p.token(p.certified))


async def test_the_author_may_still_send_their_own_note_again(people: People) -> None:
    """The near miss: the same author re-sending (an edit while held) keeps the tracking id."""
    p = people
    note, held = await p.submit_note(p.provisional)
    edited = {**note, "text": f"{note['text']} Follow-up on Friday."}
    resp = await p.client.post("/api/v1/notes", json=edited, headers=p.token(p.provisional))
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["submission_id"] == held["submission_id"]


async def test_a_cosigned_note_is_not_silently_replaced_by_an_unsigned_amendment(people: People) -> None:
    """The certified peer's note, co-signed by a supervisor and delivered final: re-sending it
    without the co-signature would have replaced the signed copy with an unsigned one."""
    p = people
    note = p.note(p.certified, await p.session(p.certified))
    sup = p.token(p.supervisor, "peer-supervisor")
    signed = {**note, "cosigner_id": p.supervisor, "cosigned_at": "2026-03-02T16:00:00-06:00"}
    resp = await p.client.post("/api/v1/notes", json=signed, headers=sup)
    assert resp.status == 202, await resp.text()
    assert await p.wait_state((await resp.json())["submission_id"], "delivered") == "delivered"
    [doc] = await p.documents(str(note["id"]))
    assert doc["docStatus"] == "final"

    seq = await p.last_seq()
    amended = {**note, "text": f"{note['text']} Changed afterwards."}
    resp = await p.client.post("/api/v1/notes", json=amended, headers=p.token(p.certified))
    assert resp.status == 409, await resp.text()
    assert (await resp.json())["code"] == "record_cosigned"
    refused = [
        (e.action, (e.detail or {}).get("code")) for e in await p.audit_after(seq) if e.outcome == "refused"
    ]
    assert refused == [("submit", "record_cosigned")]
    assert await p.documents(str(note["id"])) == [doc]
    # the amendment through its co-signer still goes out
    resp = await p.client.post("/api/v1/notes", json={**signed, "text": amended["text"]}, headers=sup)
    assert resp.status == 202, await resp.text()
