"""Issue 10, attack 2: authorship not tied to the caller. For peer roles the signed-in person is
the session's ``peer_id`` and the note's ``author_id`` (or they are filled in from the token); the
role comes from the directory. A mismatch is 403 with a stable code, nothing queued, on record."""

from __future__ import annotations

import pytest

from tests.security.conftest import OTHER_ORG, People


async def _refused_without_a_trace(
    p: People, path: str, body: dict[str, object], headers: dict[str, str], code: str, rule: str
) -> None:
    before, seq = await p.outbox_ids(), await p.last_seq()
    resp = await p.client.post(path, json=body, headers=headers)
    assert resp.status == 403, await resp.text()
    answer = await resp.json()
    assert (answer["code"], answer["rule"]) == (code, rule)
    assert await p.outbox_ids() == before  # nothing queued, nothing held
    refused = [
        (e.action, e.outcome, (e.detail or {}).get("rule"))
        for e in await p.audit_after(seq)
        if e.outcome == "refused"
    ]
    assert refused == [("submit", "refused", rule)]


async def test_a_peer_cannot_log_a_session_as_another_peer(people: People) -> None:
    p = people
    enc = p.encounter(p.certified)
    await _refused_without_a_trace(
        p, "/api/v1/encounters", enc, p.token(p.provisional), "authorship_mismatch", "authorship.self"
    )


async def test_a_peer_cannot_write_a_note_as_another_peer(people: People) -> None:
    """The provisional peer names the certified peer as author (whose notes are not held)."""
    p = people
    session = await p.session(p.certified)  # the certified peer's own session
    note = p.note(p.certified, session)
    await _refused_without_a_trace(
        p, "/api/v1/notes", note, p.token(p.provisional), "authorship_mismatch", "authorship.self"
    )
    assert await p.documents(str(note["id"])) == []


async def test_the_author_may_be_left_out_and_is_taken_from_the_token(people: People) -> None:
    p = people
    enc = p.encounter(p.provisional)
    del enc["peer_id"]
    resp = await p.client.post("/api/v1/encounters", json=enc, headers=p.token(p.provisional))
    assert resp.status == 202, await resp.text()
    note = p.note(p.provisional, str(enc["id"]))
    del note["author_id"]
    resp = await p.client.post("/api/v1/notes", json=note, headers=p.token(p.provisional))
    assert resp.status == 202, await resp.text()
    assert (await resp.json())["state"] == "held"  # hers: a provisional peer's note waits for a co-sign
    items = {i.item_key: i for i in (await p.store_view())[0]}
    assert items[str(enc["id"])].payload["encounter"]["peer_id"] == p.provisional
    assert items[str(note["id"])].payload["note"]["author_id"] == p.provisional


@pytest.mark.parametrize(
    ("who", "role", "org", "rule"),
    [
        ("provisional", "peer-supervisor", "harbor-recovery", "identity.role"),  # a peer claims supervisor
        ("outsider", "peer-specialist", "harbor-recovery", "identity.organization"),
        ("nobody", "peer-specialist", "harbor-recovery", "identity.unknown"),
    ],
)
async def test_a_token_the_directory_disagrees_with_is_refused(
    people: People, who: str, role: str, org: str, rule: str
) -> None:
    p = people
    pid = getattr(p, who) if who != "nobody" else "peer-nobody-knows"
    enc = p.encounter(pid)
    await _refused_without_a_trace(
        p, "/api/v1/encounters", enc, p.token(pid, role, org), "identity_mismatch", rule
    )


async def test_a_peer_token_without_a_practitioner_is_refused(people: People) -> None:
    p = people
    token = {"Authorization": f"Bearer {p.make_token('peer-specialist', practitioner_id=None)}"}
    before = await p.outbox_ids()
    resp = await p.client.post("/api/v1/encounters", json=p.encounter(p.certified), headers=token)
    assert resp.status == 403, await resp.text()
    assert (await resp.json())["code"] == "identity_mismatch"
    assert await p.outbox_ids() == before


async def test_a_service_account_submits_only_for_peers_of_its_organization(people: People) -> None:
    """The peer app's API key submits on behalf of peers; the directory must place the named peer
    in the key's organization."""
    p = people
    key = {"X-API-Key": p.stack.env["BRIDGE_TEST_PEER_KEY"]}
    resp = await p.client.post("/api/v1/encounters", json=p.encounter(p.certified), headers=key)
    assert resp.status == 202, await resp.text()
    await _refused_without_a_trace(
        p,
        "/api/v1/encounters",
        p.encounter(p.outsider),
        key,
        "authorship_mismatch",
        "authorship.organization",
    )
    assert OTHER_ORG  # the outsider's organization is another one


@pytest.mark.parametrize("path", ["/api/v1/referrals", "/api/v1/notes/held", "/api/v1/notes/held/mine"])
async def test_a_peer_claiming_to_be_a_supervisor_sees_no_more(people: People, path: str) -> None:
    """Views a role widens (all of the organization's referrals, the co-sign queue) check the
    claimed role against the directory too."""
    p = people
    resp = await p.client.get(path, headers=p.token(p.provisional, "peer-supervisor"))
    assert resp.status == 403, await resp.text()
    assert (await resp.json())["code"] == "identity_mismatch"
    resp = await p.client.get(
        path.replace("/held", "/held/mine") if path.endswith("held") else path, headers=p.token(p.provisional)
    )
    assert resp.status == 200, await resp.text()  # as herself she may look
