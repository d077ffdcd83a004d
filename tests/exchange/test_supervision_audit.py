"""Held notes from the author's side and refusals on record (real SQLite/PostgreSQL store, real
rule files, sandbox EHR): the author lists their own held notes only; a refused co-sign or
escalation is in the audit log with who tried, which submission and the rule that refused."""

from __future__ import annotations

import pytest

from bridge.errors import ForbiddenError
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory
from .test_held import COSIGN_AT, _held_note, held_world


async def test_the_author_lists_their_own_held_notes_only(
    sandbox_ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> None:
    w, _settings, team, svc = await held_world(sandbox_ehr, store, make_service)
    sid, note_id = await _held_note(w, svc, team)

    [mine] = await svc.supervision.list_held(actor=team.actor(team.peer), mine=True)
    assert (mine.submission_id, mine.note.id) == (sid, note_id)
    assert [r["rule"] for r in mine.hold_reasons] == ["supervision.cosign"]
    # near misses: the supervisor wrote none of them; a peer's plain list is not theirs to see
    assert await svc.supervision.list_held(actor=team.actor(team.supervisor), mine=True) == []
    assert await svc.supervision.list_held(actor=team.actor(team.peer)) == []
    [view] = [e for e in await store.audit.entries(action="view-held") if e.actor.endswith(team.peer.id)]
    assert view.detail == {"submissions": [sid], "mine": True}

    await svc.supervision.cosign_note(sid, actor=team.actor(team.supervisor), at=COSIGN_AT)
    assert await svc.supervision.list_held(actor=team.actor(team.peer), mine=True) == []


async def test_refused_cosign_and_escalation_are_audited(
    sandbox_ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> None:
    w, _settings, team, svc = await held_world(sandbox_ehr, store, make_service)
    sid, _ = await _held_note(w, svc, team)

    stranger = team.actor(team.other_supervisor)
    with pytest.raises(ForbiddenError):
        await svc.supervision.cosign_note(sid, actor=stranger, at=COSIGN_AT)
    with pytest.raises(ForbiddenError):
        await svc.supervision.record_escalation(
            sid, "Task/esc-1", actor=team.actor(team.peer, org="other-org")
        )
    refused = [e for e in await store.audit.entries(subject=sid) if e.outcome == "refused"]
    assert [(e.action, e.actor, e.detail) for e in refused] == [
        ("note.cosign", stranger.name, {"rule": "cosign.supervisor", "code": "forbidden"}),
        (
            "note.escalation",
            f"practitioner:{team.peer.id}",
            {"rule": "same-organization", "code": "forbidden"},
        ),
    ]
    # near miss: the author's own supervisor co-signs; that is on record as ok, nothing more refused
    await svc.supervision.cosign_note(sid, actor=team.actor(team.supervisor), at=COSIGN_AT)
    entries = await store.audit.entries(subject=sid)
    assert [e.outcome for e in entries if e.action == "note.cosign"] == ["refused", "ok"]
