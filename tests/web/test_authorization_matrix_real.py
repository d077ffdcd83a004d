"""The authorization matrix on the real stack: every role x endpoint x own/other organization from
the hand-written table in ``test_authorization_matrix`` (imported, not copied), answered by the
real ``ExchangeService`` through ``create_app`` (sandbox EHR, SQLite store, the rule files).

The fake-based matrix proves the web layer's decisions; this one proves the real service refuses
without a trace (nothing queued, no Task moved at the EHR, an audit entry only where the service
audits refusals: co-sign and escalation) and that an allowed call gets past authorization.
One stack for the module keeps the 160 cases within seconds.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from joserfc.jwk import ECKey

from bridge.domain import Role
from bridge.mappers import referral_id_for
from bridge.store import OutboxState, Store, open_store
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import ORG, OTHER_ORG, TokenFactory, bearer
from tests.web.stack import Stack, add_peer, encounter_for, place_referrals, serve, write_stack
from tests.web.test_authorization_matrix import EXPECTED_ROLES

Client = TestClient[Any, Any]
WRITTEN_AT = "2026-03-02T15:00:00-06:00"
# the actions the service puts on record when it refuses them (bridge/web/handlers.py
# authorize_supervision); every other refusal leaves the audit log untouched
AUDITED_REFUSALS = {
    "cosign_note": "note.cosign",
    "record_escalation": "note.escalation",
    "return_note": "note.return",
}


@dataclass
class World:
    client: Client
    stack: Stack
    store: Store
    ehr_base: str
    supervisor: str  # supervises the provisional peer
    provisional: str  # their notes wait for the supervisor's co-sign
    encounters: dict[str, str]  # practitioner id -> the session their notes document
    seeded_submission: str
    held_submission: str  # refused callers aim here: it must stay held all through
    cosign_submission: str  # held too: the allowed co-sign releases this one
    delivered_encounter: str  # Encounter/<id> at the EHR: what completing a referral names
    referrals: dict[str, str] = field(default_factory=dict)  # name -> referral id
    tasks: dict[str, str] = field(default_factory=dict)  # name -> Task id at the EHR


async def _referral_ids(client: Client, token: str) -> set[str]:
    resp = await client.get("/api/v1/referrals", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    return {r["id"] for r in (await resp.json())["items"]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(
    sandbox_ehr: Sandbox,
    tmp_path_factory: pytest.TempPathFactory,
    jwks: dict[str, Any],
    make_token: TokenFactory,
) -> AsyncIterator[World]:
    workdir = tmp_path_factory.mktemp("authz-real")
    jwks_file = workdir / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, workdir / "bridge", port=0, jwks_file=jwks_file)
    tag = uuid.uuid4().hex[:8]
    sup = add_peer(stack, f"sup-{tag}", role="peer-supervisor", level="supervisor")
    prov = add_peer(stack, f"prov-{tag}", level="provisional", supervisor_id=sup)
    names = ("requested", "to-decline", "accepted", "started")
    tasks = dict(zip(names, await place_referrals(stack, sandbox_ehr, len(names)), strict=True))
    referrals = {name: referral_id_for("clinic", t) for name, t in tasks.items()}
    async with serve(stack) as client:
        peer = make_token(practitioner_id=stack.peer_id)
        for _ in range(150):  # the start-up poll fills the inbox beside the first requests
            if set(referrals.values()) <= await _referral_ids(client, peer):
                break
            await asyncio.sleep(0.1)
        assert set(referrals.values()) <= await _referral_ids(client, peer)
        for path in ("accepted/accept", "started/accept", "started/start"):
            name, verb = path.split("/")
            resp = await client.post(
                f"/api/v1/referrals/{referrals[name]}/{verb}", json={}, headers=bearer(peer)
            )
            assert resp.status == 200, await resp.text()

        # a note goes out with its author's own session (the EHR gets one peer per Encounter)
        encounters: dict[str, str] = {}
        submissions: dict[str, str] = {}
        for pid in (stack.peer_id, sup, prov):
            enc = {**encounter_for(stack), "id": f"enc-{tag}-{pid}", "peer_id": pid}
            role = "peer-supervisor" if pid == sup else "peer-specialist"  # as the directory says
            resp = await client.post(
                "/api/v1/encounters", json=enc, headers=bearer(make_token(role, practitioner_id=pid))
            )
            assert resp.status == 202, await resp.text()
            encounters[pid] = enc["id"]
            submissions[pid] = (await resp.json())["submission_id"]
        seeded = submissions[stack.peer_id]
        for _ in range(150):  # completing a referral names the Encounter delivered for it
            view = await (await client.get(f"/api/v1/submissions/{seeded}", headers=bearer(peer))).json()
            if view["state"] == "delivered":
                break
            await asyncio.sleep(0.1)
        assert view["state"] == "delivered", view
        held = []
        for n in range(2):  # one stays held through every refusal, one for the allowed co-sign
            note = {
                "id": f"note-held-{tag}-{n}",
                "participant_id": stack.participant_id,
                "author_id": prov,
                "encounter_id": encounters[prov],
                "audience": "care-team",
                "text": "Worked on the housing application together.",
                "written_at": WRITTEN_AT,
            }
            author = bearer(make_token(practitioner_id=prov))
            resp = await client.post("/api/v1/notes", json=note, headers=author)
            assert resp.status == 202, await resp.text()
            assert (await resp.json())["state"] == "held"
            held.append((await resp.json())["submission_id"])

        store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")
        try:
            yield World(
                client=client,
                stack=stack,
                store=store,
                ehr_base=sandbox_ehr.base_url,
                supervisor=sup,
                provisional=prov,
                encounters=encounters,
                seeded_submission=seeded,
                held_submission=held[0],
                cosign_submission=held[1],
                delivered_encounter=view["fhir_ids"]["Encounter"],
                referrals=referrals,
                tasks=tasks,
            )
        finally:
            await store.close()


def _practitioner(w: World, role: str, endpoint: str) -> str:
    """The caller's practitioner id: whoever the allowed call needs (the token, not the table, varies)."""
    if role == Role.PEER_SUPERVISOR.value:
        return w.supervisor  # co-signs the provisional peer's notes
    if role == Role.PEER_SPECIALIST.value and endpoint == "record_escalation":
        return w.provisional  # the author records the escalation on their own note
    return w.stack.peer_id


def _note(w: World, author: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"note-{uuid.uuid4().hex[:10]}",
        "participant_id": w.stack.participant_id,
        "author_id": author,
        "encounter_id": w.encounters[author],
        "audience": "care-team",
        "text": "Talked through the next steps for the benefits application.",
        "written_at": WRITTEN_AT,
        **extra,
    }


def _call(
    w: World, endpoint: str, who: str, h: dict[str, str], *, allowed: bool
) -> Awaitable[ClientResponse]:
    c, r = w.client, w.referrals
    held = w.cosign_submission if allowed else w.held_submission
    calls: dict[str, Callable[[], Awaitable[ClientResponse]]] = {
        "submit_encounter": lambda: c.post(
            "/api/v1/encounters",
            json={**encounter_for(w.stack), "id": f"enc-{uuid.uuid4().hex[:10]}", "peer_id": who},
            headers=h,
        ),
        "submit_note": lambda: c.post("/api/v1/notes", json=_note(w, who), headers=h),
        "check_note": lambda: c.post("/api/v1/notes/check", json=_note(w, who), headers=h),
        # the supervisor co-signs at submission: their supervisee's note, naming themselves
        "submit_cosigned_note": lambda: c.post(
            "/api/v1/notes",
            json=_note(w, w.provisional, cosigner_id=who, cosigned_at="2026-03-02T16:00:00-06:00"),
            headers=h,
        ),
        "list_held": lambda: c.get("/api/v1/notes/held", headers=h),
        "list_my_held": lambda: c.get("/api/v1/notes/held/mine", headers=h),
        "cosign_note": lambda: c.post(f"/api/v1/notes/{held}/cosign", headers=h),
        "record_escalation": lambda: c.post(
            f"/api/v1/notes/{w.held_submission}/escalation", json={"escalation_ref": "Task/esc-1"}, headers=h
        ),
        "return_note": lambda: c.post(
            f"/api/v1/notes/{held}/return", json={"comment": "Add the follow-up."}, headers=h
        ),
        "get_submission": lambda: c.get(f"/api/v1/submissions/{w.seeded_submission}", headers=h),
        "list_outbox": lambda: c.get("/api/v1/outbox", headers=h),
        "list_referrals": lambda: c.get("/api/v1/referrals", headers=h),
        "get_referral": lambda: c.get(f"/api/v1/referrals/{r['requested']}", headers=h),
        "referral_accept": lambda: c.post(f"/api/v1/referrals/{r['requested']}/accept", json={}, headers=h),
        "referral_decline": lambda: c.post(
            f"/api/v1/referrals/{r['to-decline']}/decline", json={"reason": "no capacity"}, headers=h
        ),
        "referral_start": lambda: c.post(f"/api/v1/referrals/{r['accepted']}/start", json={}, headers=h),
        "referral_complete": lambda: c.post(
            f"/api/v1/referrals/{r['started']}/complete", json={"outputs": [w.delivered_encounter]}, headers=h
        ),
    }
    return calls[endpoint]()


async def _outbox_ids(store: Store) -> set[str]:
    return {i.id for i in await store.outbox.list(limit=100_000)}


async def _task_versions(w: World) -> dict[str, tuple[str, str]]:
    async with httpx.AsyncClient(timeout=30) as ehr:
        out = {}
        for name, task_id in w.tasks.items():
            task = (await ehr.get(f"{w.ehr_base}/Task/{task_id}")).json()
            out[name] = (task["status"], task["meta"]["versionId"])
    return out


async def _last_seq(store: Store) -> int:
    entries = await store.audit.entries(limit=100_000)
    return entries[-1].seq if entries else 0


CASES = [
    (role.value, name, org) for role in Role for name in sorted(EXPECTED_ROLES) for org in ("own", "other")
]


@pytest.mark.asyncio(loop_scope="module")  # the module's one stack lives on the module's loop
@pytest.mark.parametrize(("role", "endpoint", "org"), CASES)
async def test_authorization_matrix_on_the_real_stack(
    world: World, make_token: TokenFactory, role: str, endpoint: str, org: str
) -> None:
    w = world
    who = _practitioner(w, role, endpoint)
    token = make_token(role, ORG if org == "own" else OTHER_ORG, practitioner_id=who)
    allowed = org == "own" and role in EXPECTED_ROLES[endpoint]
    outbox_before = await _outbox_ids(w.store)
    tasks_before = await _task_versions(w) if endpoint.startswith("referral_") else None
    seq = await _last_seq(w.store)

    resp = await _call(w, endpoint, who, bearer(token), allowed=allowed)

    if allowed:
        assert resp.status not in (401, 403), (resp.status, await resp.text())
        if endpoint.startswith("submit_"):
            assert resp.status == 202, (resp.status, await resp.text())
            sid = (await resp.json())["submission_id"]
            assert await _outbox_ids(w.store) - outbox_before == {sid}  # queued (or held) in the outbox
        return

    assert resp.status == 403, (resp.status, await resp.text())
    body = await resp.json()
    assert body["code"] == "forbidden"
    assert body["rule"] == ("same-organization" if org == "other" else f"role:{role}")
    assert await _outbox_ids(w.store) == outbox_before  # nothing queued
    assert (await w.store.outbox.get(w.held_submission)).state is OutboxState.HELD  # nor released
    if tasks_before is not None:
        assert await _task_versions(w) == tasks_before  # no Task moved at the EHR
    actor = f"practitioner:{who}"
    mine = [e for e in await w.store.audit.entries(after_seq=seq, limit=100_000) if e.actor == actor]
    expected = [(AUDITED_REFUSALS[endpoint], "refused", body["rule"])] if endpoint in AUDITED_REFUSALS else []
    assert [(e.action, e.outcome, (e.detail or {}).get("rule")) for e in mine] == expected


# what a caller's request writes to the audit log (the outbound worker and the poller write the rest)
CALLER_ACTIONS = ("submit", "view", "note.", "referral.")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("credential", ["none", "foreign-key"])
@pytest.mark.parametrize("endpoint", sorted(EXPECTED_ROLES))
async def test_no_valid_credential_is_401_without_a_trace(
    world: World, make_token: TokenFactory, endpoint: str, credential: str
) -> None:
    w = world
    # the role the table allows, so only the credential stands between the caller and the service
    role = sorted(EXPECTED_ROLES[endpoint])[0]
    who = _practitioner(w, role, endpoint)
    headers: dict[str, str] = {}
    if credential == "foreign-key":  # same kid and claims, signed by a key the bridge does not trust
        stranger = ECKey.generate_key("P-256", parameters={"kid": "idp-1", "alg": "ES256"})
        headers = bearer(make_token(role, practitioner_id=who, key=stranger))
    outbox_before = await _outbox_ids(w.store)
    tasks_before = await _task_versions(w)
    seq = await _last_seq(w.store)

    resp = await _call(w, endpoint, who, headers, allowed=False)

    assert resp.status == 401, (resp.status, await resp.text())
    assert (await resp.json())["code"] == "unauthenticated"
    assert await _outbox_ids(w.store) == outbox_before
    assert (await w.store.outbox.get(w.held_submission)).state is OutboxState.HELD
    assert await _task_versions(w) == tasks_before
    new = await w.store.audit.entries(after_seq=seq, limit=100_000)
    assert [e.action for e in new if e.action.startswith(CALLER_ACTIONS)] == []  # nobody to name
