"""Issue 10, attack 3: co-sign bypass by re-sending. A note sent with ``cosigner_id`` goes through
the check ``POST /cosign`` makes (the directory's role, the organization, the author's supervisor);
a held note is released only by it. Refusals are on record and leave the note held."""

from __future__ import annotations

import pytest

from tests.security.conftest import People

COSIGNED_AT = "2026-03-02T16:00:00-06:00"


async def _resend(p: People, who: str, role: str, rule: str, code: str = "forbidden") -> None:
    note, held = await p.submit_note(p.provisional)
    sid = held["submission_id"]
    seq = await p.last_seq()
    resent = {**note, "cosigner_id": who, "cosigned_at": COSIGNED_AT}
    resp = await p.client.post("/api/v1/notes", json=resent, headers=p.token(who, role))
    assert resp.status == 403, await resp.text()
    answer = await resp.json()
    assert (answer["code"], answer["rule"]) == (code, rule)
    assert await p.state(sid) == "held"  # not released
    assert await p.documents(str(note["id"])) == []
    refused = [
        (e.action, e.outcome, (e.detail or {}).get("rule"))
        for e in await p.audit_after(seq)
        if e.outcome != "ok"
    ]
    assert refused == [("note.cosign", "refused", rule)]


async def test_another_supervisor_cannot_cosign_by_resending(people: People) -> None:
    await _resend(people, people.other_supervisor, "peer-supervisor", "cosign.supervisor")


async def test_a_peer_claiming_to_be_a_supervisor_cannot_cosign_by_resending(people: People) -> None:
    """The token says peer-supervisor; the directory lists the certified peer as a peer."""
    await _resend(people, people.certified, "peer-supervisor", "identity.role", "identity_mismatch")


@pytest.mark.parametrize("how", ["resend", "cosign"])
async def test_the_authors_supervisor_releases_it_either_way(people: People, how: str) -> None:
    p = people
    note, held = await p.submit_note(p.provisional)
    sid = held["submission_id"]
    sup = p.token(p.supervisor, "peer-supervisor")
    if how == "resend":
        resent = {**note, "cosigner_id": p.supervisor, "cosigned_at": COSIGNED_AT}
        resp = await p.client.post("/api/v1/notes", json=resent, headers=sup)
    else:
        resp = await p.client.post(f"/api/v1/notes/{sid}/cosign", headers=sup)
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["submission_id"] == sid
    assert await p.wait_state(sid, "delivered") == "delivered"
    [doc] = await p.documents(str(note["id"]))
    assert doc["docStatus"] == "final"
