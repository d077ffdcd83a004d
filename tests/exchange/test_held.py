"""Held notes: accepted and stored ``held``, never sent while held; co-sign and escalation release
them (same tracking id) to the real sandbox EHR. Store behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from bridge.config import Settings
from bridge.domain import CertificationLevel, HumanName, PeerNote, PeerWorker, Role
from bridge.errors import ForbiddenError, InputError, NotFoundInStoreError, NotHeldError, PolicyError
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, count, settings_for

CENTRAL = timezone(timedelta(hours=-6))
COSIGN_AT = datetime(2026, 11, 27, 9, 0, tzinfo=CENTRAL)
RISK_TEXT = "Said she has been thinking about suicide this week; we talked about who to call."


class Team:
    """A provisional peer (notes held for a co-sign), their supervisor, and a second supervisor."""

    def __init__(self, w: World, org: str) -> None:
        self.org = org
        self.supervisor = _worker(f"sup-{w.tag}", Role.PEER_SUPERVISOR, CertificationLevel.SUPERVISOR)
        self.other_supervisor = _worker(f"sup2-{w.tag}", Role.PEER_SUPERVISOR, CertificationLevel.SUPERVISOR)
        self.peer = _worker(
            f"prov-{w.tag}",
            Role.PEER_SPECIALIST,
            CertificationLevel.PROVISIONAL,
            supervisor_id=self.supervisor.id,
            last_supervision=(COSIGN_AT - timedelta(days=1)).date(),
        )
        w.directory.add(self.supervisor, self.other_supervisor, self.peer)

    def actor(self, who: PeerWorker, *, org: str | None = None) -> Actor:
        return Actor(
            name=f"practitioner:{who.id}",
            role=who.role.value,
            organization=org or self.org,
            practitioner_id=who.id,
        )


def _worker(wid: str, role: Role, level: CertificationLevel, **kw: object) -> PeerWorker:
    return PeerWorker(
        id=wid,
        name=HumanName(given="Morgan", family="Lee"),
        credential="CPRS",
        certification_level=level,
        organization_id="harbor-recovery",
        role=role,
        **kw,  # type: ignore[arg-type]
    )


async def held_world(
    ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> tuple[World, Settings, Team, ExchangeService]:
    """The sandbox world, its settings, a provisional peer's team and a service on ``store``."""
    w = World(ehr)
    # the bridge's organization is the one the directory places the team in (callers are checked
    # against the directory: issue 10)
    settings = settings_for(ehr.base_url, org="harbor-recovery")
    team = Team(w, settings.organization.id)
    # the bridge's clock is the co-sign day's: supervision recency is judged against it
    return w, settings, team, await make_service(settings, store, w.directory, clock=lambda: COSIGN_AT)


async def _held_note(w: World, svc: ExchangeService, team: Team, **note: object) -> tuple[str, str]:
    p = w.participant()
    enc = w.encounter(p, peer_id=team.peer.id)
    await svc.submissions.submit_encounter(enc, actor=team.actor(team.peer))
    n = w.note(enc, author_id=team.peer.id, **note)
    sub = await svc.submissions.submit_note(n, actor=team.actor(team.peer), idempotency_key=f"k-{n.id}")
    return sub.id, n.id


def _docs(base_url: str, system: str, note_id: str) -> list[dict[str, object]]:
    r = httpx.get(f"{base_url}/DocumentReference", params={"identifier": f"{system}|{note_id}"}, timeout=30)
    return [e["resource"] for e in r.json().get("entry", [])]


async def test_held_note_waits_then_cosigned_is_delivered_once_as_final(
    sandbox_ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> None:
    w, settings, team, svc = await held_world(sandbox_ehr, store, make_service)
    sid, note_id = await _held_note(w, svc, team)

    held = await svc.submissions.get(sid)
    assert held.state == "held" and [r["rule"] for r in held.hold_reasons] == ["supervision.cosign"]
    await svc.worker.drain("clinic")  # the session goes; the held note does not
    system = f"{settings.organization.identifier_system}/note"
    assert count(sandbox_ehr.base_url, "DocumentReference", f"{system}|{note_id}") == 0
    assert (await svc.submissions.get(sid)).state == "held"
    submits = await store.audit.entries(subject=sid, action="submit")
    assert submits[0].detail is not None and submits[0].detail["verdict"] == "hold"
    assert held.record_id == note_id
    # a retried POST (same Idempotency-Key) answers the same held submission; nothing new is stored
    item = await store.outbox.get(sid)
    note = PeerNote.model_validate_json(json.dumps(item.payload["note"]))
    again = await svc.submissions.submit_note(
        note, actor=team.actor(team.peer), idempotency_key=f"k-{note_id}"
    )
    assert (again.id, again.state, again.replayed) == (sid, "held", True)
    assert len(await store.outbox.find(kind="note", item_key=note_id)) == 1

    # who may not co-sign: the author, another organization, a supervisor who is not theirs
    refusals = [
        (team.actor(team.peer), "cosign.role"),
        (team.actor(team.supervisor, org="other-org"), "same-organization"),
        (team.actor(team.other_supervisor), "cosign.supervisor"),
    ]
    for actor, rule in refusals:
        with pytest.raises(ForbiddenError) as info:
            await svc.supervision.cosign_note(sid, actor=actor, at=COSIGN_AT)
        assert info.value.rule == rule
    assert [h.submission_id for h in await svc.supervision.list_held(actor=team.actor(team.supervisor))] == [
        sid
    ]
    assert await svc.supervision.list_held(actor=team.actor(team.other_supervisor)) == []

    done = await svc.supervision.cosign_note(
        note_id, actor=team.actor(team.supervisor), at=COSIGN_AT
    )  # by note id
    assert (done.id, done.state, done.hold_reasons) == (sid, "queued", [])
    with pytest.raises(NotHeldError):
        await svc.supervision.cosign_note(sid, actor=team.actor(team.supervisor), at=COSIGN_AT)
    await svc.worker.drain("clinic")
    delivered = await svc.submissions.get(sid)
    assert delivered.state == "delivered"

    docs = _docs(sandbox_ehr.base_url, system, note_id)
    assert len(docs) == 1 and docs[0]["docStatus"] == "final"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(
            f"{sandbox_ehr.base_url}/Provenance", params={"target": f"DocumentReference/{docs[0]['id']}"}
        )
    prov = r.json()
    agents = [a for e in prov["entry"] for a in e["resource"]["agent"]]
    roles = [c["code"] for a in agents for c in a["type"]["coding"]]
    assert "verifier" in roles
    cosigns = await store.audit.entries(subject=sid, action="note.cosign")
    assert [e.outcome for e in cosigns] == ["refused"] * len(refusals) + ["ok"]  # refusals on record
    assert cosigns[-1].actor == f"practitioner:{team.supervisor.id}"


async def test_risk_of_harm_needs_the_escalation_too(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w, settings, team, svc = await held_world(sandbox_ehr, sqlite_store, make_service)
    sid, note_id = await _held_note(w, svc, team, text=RISK_TEXT)
    rules = {r["rule"] for r in (await svc.submissions.get(sid)).hold_reasons}
    assert rules == {"supervision.cosign", "content.risk-of-harm"}

    cosigned = await svc.supervision.cosign_note(sid, actor=team.actor(team.supervisor), at=COSIGN_AT)
    assert cosigned.state == "held" and [r["rule"] for r in cosigned.hold_reasons] == ["content.risk-of-harm"]
    with pytest.raises(InputError) as info:
        await svc.supervision.record_escalation(sid, "a phone call", actor=team.actor(team.peer))
    assert info.value.field == "escalation_ref"
    with pytest.raises(ForbiddenError):
        await svc.supervision.record_escalation(sid, "Task/esc-1", actor=team.actor(team.other_supervisor))

    done = await svc.supervision.record_escalation(
        sid, "Task/esc-1", actor=team.actor(team.peer)
    )  # the author
    assert (done.id, done.state) == (sid, "queued")
    await svc.worker.drain("clinic")
    assert (await svc.submissions.get(sid)).state == "delivered"
    system = f"{settings.organization.identifier_system}/note"
    docs = _docs(sandbox_ehr.base_url, system, note_id)
    assert len(docs) == 1 and docs[0]["docStatus"] == "final"


async def test_blocked_and_unknown_notes_cannot_be_cosigned(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w, _settings, team, svc = await held_world(sandbox_ehr, sqlite_store, make_service)
    p = w.participant()
    enc = w.encounter(p, peer_id=team.peer.id)
    await svc.submissions.submit_encounter(enc, actor=team.actor(team.peer))
    blocked = w.note(enc, author_id=team.peer.id, text="She was diagnosed with F11.20 last year.")
    with pytest.raises(PolicyError):
        await svc.submissions.submit_note(blocked, actor=team.actor(team.peer))
    sup = team.actor(team.supervisor)
    for ref in (blocked.id, "sub-nothing-here"):
        with pytest.raises(NotFoundInStoreError):
            await svc.supervision.cosign_note(ref, actor=sup, at=COSIGN_AT)
    await svc.worker.drain("clinic")
    enc_sub = (await sqlite_store.outbox.find(kind="encounter", item_key=enc.id))[0]
    with pytest.raises(NotFoundInStoreError):  # a session is not a note
        await svc.supervision.cosign_note(enc_sub.id, actor=sup, at=COSIGN_AT)


async def test_resending_replaces_the_held_copy(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """The older way (the supervisor sends the whole note with cosigner_id) still works, and it
    releases the held copy under the same tracking id instead of leaving it held behind."""
    w, _settings, team, svc = await held_world(sandbox_ehr, sqlite_store, make_service)
    sid, note_id = await _held_note(w, svc, team)
    item = await sqlite_store.outbox.get(sid)
    note = PeerNote.model_validate_json(json.dumps(item.payload["note"]))
    # the peer edits the held note: still held, the same held copy takes the new text
    edited = note.model_copy(update={"text": note.text + " Follow-up set for Friday."})
    again = await svc.submissions.submit_note(edited, actor=team.actor(team.peer))
    assert (again.id, again.state) == (sid, "held")
    stored = await sqlite_store.outbox.get(sid)
    assert stored.payload["note"]["text"].endswith("Friday.")
    note = edited
    resent = note.model_copy(update={"cosigner_id": team.supervisor.id, "cosigned_at": COSIGN_AT})
    sub = await svc.submissions.submit_note(resent, actor=team.actor(team.supervisor))
    assert (sub.id, sub.state) == (sid, "queued")
    await svc.worker.drain("clinic")
    assert (await svc.submissions.get(sid)).state == "delivered"
    assert len(await sqlite_store.outbox.find(kind="note", item_key=note_id)) == 1
