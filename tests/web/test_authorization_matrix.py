"""Every role x endpoint x own/other organization, against the expected allow/deny written out here.

The table is written by hand (not derived from ``ROLE_ACTIONS``), so a change to the policy that
opens or closes an endpoint for a role fails here until the table is changed on purpose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import settings_from_dict
from bridge.domain import ReferralStatus, Role
from bridge.web import create_app
from bridge.web.auth import Authenticator
from bridge.web.principal import Action, Principal, has_required_scope
from bridge.web.routes import ROUTES
from tests.web import payloads
from tests.web.conftest import ORG, OTHER_ORG, TokenFactory, bearer, settings_dict
from tests.web.fakes import FakeService, factory

Client = TestClient[Any, Any]
Call = Callable[[Client, dict[str, str]], Awaitable[ClientResponse]]

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
    "get_submission": PEERS | {"care-coordinator", "integrator"},
    "list_outbox": {"integrator"},
    "list_referrals": PEERS | {"care-coordinator"},
    "get_referral": PEERS | {"care-coordinator"},
    "referral_accept": PEERS,
    "referral_decline": PEERS,
    "referral_start": PEERS,
    "referral_complete": PEERS,
}

CALLS: dict[str, Call] = {
    "submit_encounter": lambda c, h: c.post("/api/v1/encounters", json=payloads.encounter(), headers=h),
    "submit_note": lambda c, h: c.post("/api/v1/notes", json=payloads.note(), headers=h),
    "check_note": lambda c, h: c.post("/api/v1/notes/check", json=payloads.note(), headers=h),
    # co-signing is sending the note with the supervisor named in cosigner_id (the token's practitioner)
    "submit_cosigned_note": lambda c, h: c.post(
        "/api/v1/notes",
        json=payloads.note(cosigner_id="peer-1", cosigned_at="2026-03-02T16:00:00-06:00"),
        headers=h,
    ),
    "list_held": lambda c, h: c.get("/api/v1/notes/held", headers=h),
    "list_my_held": lambda c, h: c.get("/api/v1/notes/held/mine", headers=h),
    "cosign_note": lambda c, h: c.post("/api/v1/notes/sub-held/cosign", headers=h),
    "record_escalation": lambda c, h: c.post(
        "/api/v1/notes/sub-held/escalation", json={"escalation_ref": "Task/esc-1"}, headers=h
    ),
    "get_submission": lambda c, h: c.get("/api/v1/submissions/sub-seed", headers=h),
    "list_outbox": lambda c, h: c.get("/api/v1/outbox", headers=h),
    "list_referrals": lambda c, h: c.get("/api/v1/referrals", headers=h),
    "get_referral": lambda c, h: c.get("/api/v1/referrals/ref-requested", headers=h),
    "referral_accept": lambda c, h: c.post("/api/v1/referrals/ref-requested/accept", json={}, headers=h),
    "referral_decline": lambda c, h: c.post(
        "/api/v1/referrals/ref-requested/decline", json={"reason": "no capacity"}, headers=h
    ),
    "referral_start": lambda c, h: c.post("/api/v1/referrals/ref-accepted/start", json={}, headers=h),
    "referral_complete": lambda c, h: c.post("/api/v1/referrals/ref-started/complete", json={}, headers=h),
}


def test_the_table_covers_every_protected_route() -> None:
    protected = {r.name for r in ROUTES if r.action is not None} | {"submit_cosigned_note"}
    assert protected == set(EXPECTED_ROLES) == set(CALLS)


CASES = [
    (role.value, name, org) for role in Role for name in sorted(EXPECTED_ROLES) for org in ("own", "other")
]


@pytest.fixture
async def matrix_client(env: None, jwks: dict[str, Any]) -> Any:
    from bridge.web.service import Submission

    settings = settings_from_dict(settings_dict())
    service = FakeService(organization=ORG)
    service.submissions["sub-seed"] = Submission("sub-seed", "encounter", "enc-1", "clinic", "queued", 0, ORG)
    service.submissions["sub-held"] = Submission("sub-held", "note", "note-1", "clinic", "held", 0, ORG)
    service.add_referral("ref-requested")
    service.add_referral("ref-accepted", status=ReferralStatus.ACCEPTED)
    service.add_referral("ref-started", status=ReferralStatus.IN_PROGRESS)
    app = create_app(
        settings,
        service_factory=factory(service),
        authenticator=Authenticator.from_settings(settings, jwks=jwks),
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


@pytest.mark.parametrize(("role", "endpoint", "org"), CASES)
async def test_authorization_matrix(
    matrix_client: Client, make_token: TokenFactory, role: str, endpoint: str, org: str
) -> None:
    token = make_token(role, ORG if org == "own" else OTHER_ORG)
    resp = await CALLS[endpoint](matrix_client, bearer(token))
    allowed = org == "own" and role in EXPECTED_ROLES[endpoint]
    if allowed:
        assert resp.status < 400, (resp.status, await resp.text())
    else:
        assert resp.status == 403, (resp.status, await resp.text())
        body = await resp.json()
        assert body["code"] == "forbidden"
        expected_rule = "same-organization" if org == "other" else f"role:{role}"
        if endpoint == "submit_cosigned_note" and org == "own" and role == "peer-specialist":
            expected_rule = "role:peer-specialist"  # may send notes, but not co-signed ones
        assert body["rule"] == expected_rule


def test_has_required_scope_names_the_deciding_rule() -> None:
    peer = Principal("u", Role.PEER_SPECIALIST, ORG, "peer-1")
    assert has_required_scope(peer, Action.SUBMIT_NOTE, organization=ORG).allowed
    d = has_required_scope(peer, Action.COSIGN_NOTE, organization=ORG)
    assert (d.allowed, d.rule) == (False, "role:peer-specialist")
    d = has_required_scope(peer, Action.SUBMIT_NOTE, organization=OTHER_ORG)
    assert (d.allowed, d.rule) == (False, "same-organization")


async def test_peers_see_only_their_own_referrals_when_configured(
    env: None, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    from aiohttp.test_utils import TestServer

    settings = settings_from_dict(settings_dict(peers_see_only_own=True))
    service = FakeService(organization=ORG)
    service.add_referral("mine", assignee="peer-1")
    service.add_referral("theirs", assignee="peer-2")
    service.add_referral("queue")  # unassigned: the organization's queue
    service.add_referral("abroad", organization=OTHER_ORG)
    app = create_app(
        settings,
        service_factory=factory(service),
        authenticator=Authenticator.from_settings(settings, jwks=jwks),
    )
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        peer = bearer(make_token("peer-specialist", practitioner_id="peer-1"))
        listed = await (await c.get("/api/v1/referrals", headers=peer)).json()
        assert sorted(i["id"] for i in listed["items"]) == ["mine", "queue"]
        assert (await c.get("/api/v1/referrals/theirs", headers=peer)).status == 404
        assert (await c.post("/api/v1/referrals/theirs/accept", json={}, headers=peer)).status == 404
        assert (await c.get("/api/v1/referrals/abroad", headers=peer)).status == 403
        sup = bearer(make_token("peer-supervisor", practitioner_id="sup-1"))
        listed = await (await c.get("/api/v1/referrals", headers=sup)).json()
        assert sorted(i["id"] for i in listed["items"]) == ["mine", "queue", "theirs"]


async def test_integrator_views_carry_no_note_text(matrix_client: Client, make_token: TokenFactory) -> None:
    token = make_token("peer-specialist")
    text = "A sentence only this note contains 7f3a"
    await matrix_client.post("/api/v1/notes", json=payloads.note(text=text), headers=bearer(token))
    ops = bearer(make_token("integrator", practitioner_id=None))
    outbox = await (await matrix_client.get("/api/v1/outbox", headers=ops)).text()
    assert "note" in outbox and text not in outbox


async def test_a_supervisor_cosigns_only_in_their_own_name(
    matrix_client: Client, make_token: TokenFactory
) -> None:
    note = payloads.note(cosigner_id="sup-7", cosigned_at="2026-03-02T16:00:00-06:00")
    other = bearer(make_token("peer-supervisor", practitioner_id="sup-8"))
    resp = await matrix_client.post("/api/v1/notes", json=note, headers=other)
    assert resp.status == 403 and (await resp.json())["rule"] == "cosign.self"
    same = bearer(make_token("peer-supervisor", practitioner_id="sup-7"))
    assert (await matrix_client.post("/api/v1/notes", json=note, headers=same)).status == 202


def test_the_rule_files_decide_too() -> None:
    from tests.web.fakes import _policy

    permits = _policy().permits
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
