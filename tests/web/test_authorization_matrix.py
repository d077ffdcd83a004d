"""Who may call what: the expected allow/deny per role and endpoint, written out here by hand (not
derived from ``ROLE_ACTIONS``), so a change to the policy that opens or closes an endpoint for a
role fails until the table is changed on purpose. ``test_authorization_matrix_real`` asks the
real stack every role x endpoint x own/other organization against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bridge.config import settings_from_dict
from bridge.domain import Role
from bridge.roles import load_policy
from bridge.web.principal import Action, Principal, has_required_scope
from bridge.web.routes import ROUTES
from bridge_dev.sandbox import Sandbox
from tests.web import payloads, seed
from tests.web.conftest import ORG, OTHER_ORG, RULES, TokenFactory, bearer, open_app, settings_dict

Client = TestClient[Any, Any]

PEERS = {"peer-specialist", "peer-supervisor"}
EXPECTED_ROLES: dict[str, set[str]] = {
    "submit_encounter": PEERS,
    "submit_note": PEERS,
    "check_note": PEERS,
    "submit_cosigned_note": {"peer-supervisor"},
    "list_held": {"peer-supervisor"},
    "list_my_held": PEERS,
    "cosign_note": {"peer-supervisor"},
    "record_escalation": PEERS,
    "return_note": {"peer-supervisor"},
    "get_submission": PEERS | {"care-coordinator", "integrator"},
    "list_outbox": {"integrator"},
    "list_referrals": PEERS | {"care-coordinator"},
    "get_referral": PEERS | {"care-coordinator"},
    "referral_accept": PEERS,
    "referral_decline": PEERS,
    "referral_start": PEERS,
    "referral_complete": PEERS,
}


def test_the_table_covers_every_protected_route() -> None:
    protected = {r.name for r in ROUTES if r.action is not None} | {"submit_cosigned_note"}
    assert protected == set(EXPECTED_ROLES)


def test_has_required_scope_names_the_deciding_rule() -> None:
    peer = Principal("u", Role.PEER_SPECIALIST, ORG, "peer-1")
    assert has_required_scope(peer, Action.SUBMIT_NOTE, organization=ORG).allowed
    d = has_required_scope(peer, Action.COSIGN_NOTE, organization=ORG)
    assert (d.allowed, d.rule) == (False, "role:peer-specialist")
    d = has_required_scope(peer, Action.SUBMIT_NOTE, organization=OTHER_ORG)
    assert (d.allowed, d.rule) == (False, "same-organization")


async def test_peers_see_only_their_own_referrals_when_configured(
    env: None, jwks: dict[str, Any], make_token: TokenFactory, sandbox_ehr: Sandbox, tmp_path: Path
) -> None:
    settings = settings_from_dict(
        settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db", peers_see_only_own=True)
    )
    async for c, exchange in open_app(settings, jwks):
        mine = await seed.referral(exchange, accepted_by="peer-1")
        theirs = await seed.referral(exchange, accepted_by="peer-2")
        queue = await seed.referral(exchange)  # unassigned: the organization's queue
        peer = bearer(make_token("peer-specialist", practitioner_id="peer-1"))
        listed = await (await c.get("/api/v1/referrals", headers=peer)).json()
        assert sorted(i["id"] for i in listed["items"]) == sorted([mine, queue])
        assert (await c.get(f"/api/v1/referrals/{theirs}", headers=peer)).status == 404
        assert (await c.post(f"/api/v1/referrals/{theirs}/start", json={}, headers=peer)).status == 404
        sup = bearer(make_token("peer-supervisor", practitioner_id="sup-1"))
        listed = await (await c.get("/api/v1/referrals", headers=sup)).json()
        assert sorted(i["id"] for i in listed["items"]) == sorted([mine, queue, theirs])


async def test_integrator_views_carry_no_note_text(client: Client, make_token: TokenFactory) -> None:
    token = make_token("peer-specialist")
    text = "A sentence only this note contains 7f3a"
    resp = await client.post("/api/v1/notes", json=payloads.note(text=text), headers=bearer(token))
    assert resp.status == 202, await resp.text()
    ops = bearer(make_token("integrator", practitioner_id=None))
    outbox = await (await client.get("/api/v1/outbox", headers=ops)).text()
    assert "note" in outbox and text not in outbox


async def test_a_supervisor_cosigns_only_in_their_own_name(client: Client, make_token: TokenFactory) -> None:
    note = payloads.note(cosigner_id="sup-7", cosigned_at="2026-03-02T16:00:00-06:00")
    other = bearer(make_token("peer-supervisor", practitioner_id="sup-8"))
    resp = await client.post("/api/v1/notes", json=note, headers=other)
    assert resp.status == 403 and (await resp.json())["rule"] == "cosign.self"
    same = bearer(make_token("peer-supervisor", practitioner_id="sup-7"))
    resp = await client.post("/api/v1/notes", json=note, headers=same)
    assert resp.status == 202, await resp.text()


def test_the_rule_files_decide_too() -> None:
    permits = load_policy(RULES, "TX").permits
    coordinator = Principal("c", Role.CARE_COORDINATOR, ORG)
    d = has_required_scope(coordinator, Action.READ_REFERRALS, organization=ORG, permits=permits)
    assert (d.allowed, d.rule) == (True, "permissions.grants.care-coordinator.read")
    supervisor = Principal("s", Role.PEER_SUPERVISOR, ORG, "sup-1")
    d = has_required_scope(supervisor, Action.COSIGN_NOTE, organization=ORG, permits=permits)
    assert (d.allowed, d.rule) == (True, "permissions.grants.peer-supervisor.cosign")

    # an integrator narrowing a role in the rule files narrows the API, with the rule named
    class Denied:
        allowed = False
        rule = "permissions.grants.peer-specialist.update"
        reason = "peer-specialist may not update referral"

    peer = Principal("p", Role.PEER_SPECIALIST, ORG, "peer-1")
    d = has_required_scope(peer, Action.ACT_ON_REFERRAL, organization=ORG, permits=lambda *_: Denied())
    assert (d.allowed, d.rule) == (False, "permissions.grants.peer-specialist.update")
