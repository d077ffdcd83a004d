"""The note pages of the workspace: the note form (the billing fields the rules require, the live
check that is the submission's own, the matched words marked), submitting it, one note's page (its
state and what next, revise after a return, record an escalation; for the author's supervisor
co-sign and return with a comment)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from bridge.domain import (
    Audience,
    PeerNote,
    parse,
)
from bridge.errors import (
    BridgeError,
    InputError,
    NotFoundInStoreError,
    PolicyError,
)
from bridge.exchange.supervision import ESCALATION_METHODS, ESCALATION_ROLES
from bridge.web import inbox, pages
from bridge.web.errors import status_for
from bridge.web.keys import EXCHANGE
from bridge.web.models import EscalationRequest
from bridge.web.page import (
    aware,
    error_for,
    find_participant,
    form_dict,
    held_queue,
    may,
    now_utc,
    peer_name,
    redirect_home,
    render,
    require,
    require_supervision,
    see_other,
    submitted_ids,
)
from bridge.web.principal import Action, Principal, actor_for
from bridge.web.requests import form_fields

log = logging.getLogger("bridge.web.inbox")


async def new_note(request: web.Request) -> web.Response:
    principal = require(request, Action.SUBMIT_NOTE)
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    revise = request.query.get("revise", "")
    if revise:
        item = await exchange.workspace.note(revise, actor=actor)
        if item is None:
            raise web.HTTPNotFound(text="No such note of yours.")
        n = item.note
        fields = {
            "id": n.id,
            "encounter_id": n.encounter_id or "",
            "participant_id": n.participant_id,
            "audience": n.audience.value,
            "summary": n.summary or "",
            "goal": n.goal or "",
            "progress": n.progress or "",
            "text": n.text,
        }
        return await _note_form(request, principal, fields, returned=item.returned)
    session = await exchange.workspace.session(request.query.get("session", ""), actor=actor)
    if session is None:
        raise web.HTTPNotFound(text="No such session of yours: log the session first.")
    enc = session.encounter
    fields = {
        "id": f"note-{uuid.uuid4().hex[:16]}",  # made now, so a re-sent form is the same note
        "encounter_id": enc.id,
        "participant_id": enc.participant_id,
        "audience": Audience.CARE_TEAM.value,
        "summary": "; ".join(a.value.replace("-", " ").capitalize() for a in enc.activities),
        "goal": "",
        "progress": "",
        "text": "",
    }
    return await _note_form(request, principal, fields)


async def _note_form(
    request: web.Request,
    principal: Principal,
    fields: Mapping[str, Any],
    *,
    status: int = 200,
    error: dict[str, Any] | None = None,
    returned: Mapping[str, Any] | None = None,
) -> web.Response:
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    session = await exchange.workspace.session(str(fields.get("encounter_id", "")), actor=actor)
    referral = None
    if session is not None and session.encounter.referral_id:
        try:
            referral = (await exchange.store.inbox.get(session.encounter.referral_id)).referral
        except NotFoundInStoreError:
            referral = None
    form = dict(fields)
    goals = list(referral.goals) if referral else []
    if not form.get("goal") and len(goals) == 1:
        form["goal"] = goals[0]
    required = set(exchange.policy.spec.billing.required_fields)
    billable = session.encounter.billable if session else True
    participant = await find_participant(request, str(form.get("participant_id", "")))
    text = str(form.get("text", ""))
    return await render(
        request,
        principal,
        "note_form.html",
        status=status,
        error=error,
        title="Write the note",
        form=form,
        session=session,
        participant=participant,
        goals=goals,
        required={f for f in ("summary", "goal", "progress") if f in required and billable},
        # peer-team notes never leave the bridge, so a submission refuses them: not offered here
        audience_choices=[a.value for a in Audience if a is not Audience.PEER_TEAM],
        marked=pages.highlight(text, error["violations"]) if error else [],
        returned=returned,
    )


def _note_data(principal: Principal, fields: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": fields.get("id") or f"note-{uuid.uuid4().hex[:16]}",
        "participant_id": fields.get("participant_id", ""),
        "author_id": principal.practitioner_id or "",
        "audience": fields.get("audience", ""),
        "text": fields.get("text", ""),
        "written_at": now_utc().isoformat(),
    }
    for key in ("encounter_id", "summary", "goal", "progress"):
        if str(fields.get(key, "")).strip():
            data[key] = str(fields[key]).strip()
    return data


async def submit_note(request: web.Request) -> web.StreamResponse:
    principal = require(request, Action.SUBMIT_NOTE)
    fields = form_dict(await form_fields(request))
    try:
        note = parse(PeerNote, _note_data(principal, fields))
        sub = await request.app[EXCHANGE].submissions.submit_note(note, actor=actor_for(principal))
    except BridgeError as exc:
        return await _note_form(
            request, principal, fields, status=status_for(exc), error=error_for(request, exc)
        )
    if sub.state == "held":
        waits = pages.findings(sub.hold_reasons)
        risk = pages.is_risk(sub.hold_reasons, request.app[EXCHANGE].policy.satisfied_by)
        msg = (
            "Note saved. It mentions a risk of harm: record who you told (below); it is sent after that."
            if risk
            else "Note saved and waiting for your supervisor"
            + (" to co-sign" if any(f.rule == "supervision.cosign" for f in waits) else "")
            + ". It is sent to the clinic after that."
        )
    else:
        msg = "Note saved and on its way to the clinic."
    if fields.get("legacy"):
        raise redirect_home(msg=f"Note {note.id} queued.", submitted=submitted_ids(request, sub.id))
    raise see_other(f"/inbox/notes/{sub.id}", msg=msg)


async def check_note(request: web.Request) -> web.Response:
    """The live check: the submission's own check on the form as it is now (nothing stored).
    Answers JSON (verdict, findings with their spans) for the page's script."""
    principal = require(request, Action.CHECK_NOTE)
    fields = form_dict(await form_fields(request))
    satisfied_by = request.app[EXCHANGE].policy.satisfied_by
    try:
        note = parse(PeerNote, _note_data(principal, fields))
        decision = await request.app[EXCHANGE].submissions.preview_note(note, actor=actor_for(principal))
        verdict, violations = decision.verdict.value, [v.to_dict() for v in decision.violations]
        body: dict[str, Any] = {"verdict": verdict}
    except PolicyError as exc:
        violations = [dict(v) for v in exc.violations]
        body = {"verdict": "block", "headline": pages.plain_error(exc, satisfied_by)["headline"]}
    except BridgeError as exc:
        plain = pages.plain_error(exc, satisfied_by)
        return web.json_response(
            {"verdict": "error", "headline": plain["headline"], "detail": plain["detail"]},
            headers={"Cache-Control": "no-store"},
        )
    body["findings"] = [
        {"message": f.message, "rule": f.rule, "severity": f.severity, "words": list(f.words)}
        for f in pages.findings(violations)
    ]
    body["spans"] = [list(s) for s in pages.spans(violations)]
    body["risk"] = pages.is_risk(violations, satisfied_by)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def note_page(request: web.Request) -> web.Response:
    principal = require(request, Action.VIEW_INBOX)
    return await _note(request, principal, request.match_info["note_ref"])


async def _note(
    request: web.Request,
    principal: Principal,
    sid: str,
    *,
    status: int = 200,
    error: dict[str, Any] | None = None,
    typed: Mapping[str, Any] | None = None,
) -> web.Response:
    """A note as its author sees it (state, what next, revise, escalate) or as the supervisor
    whose queue holds it (co-sign, return, escalate). Anyone else: not found."""
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    mine = (
        await exchange.workspace.note(sid, actor=actor)
        if may(principal, request, Action.SUBMIT_NOTE)
        else None
    )
    queue = await held_queue(request, principal)
    held = next((h for h in queue if h.submission_id == sid), None)
    if mine is None and held is None:
        raise web.HTTPNotFound(text="No such note for you.")
    note = mine.note if mine is not None else held.note if held is not None else None
    assert note is not None
    reasons = mine.hold_reasons if mine is not None else held.waiting_for if held is not None else []
    risk = pages.is_risk(reasons, exchange.policy.satisfied_by)
    participant = await find_participant(request, note.participant_id)
    now = now_utc()
    tz = pages.zone(request.cookies.get(pages.TZ_COOKIE))
    return await render(
        request,
        principal,
        "note.html",
        status=status,
        error=error,
        title="Note",
        queue=queue,
        sid=sid,
        note=note,
        mine=mine,
        held=held,
        reasons=reasons,
        risk=risk,
        author=await peer_name(request, note.author_id),
        cosigner=await peer_name(request, note.cosigner_id),
        participant=participant,
        marked=pages.highlight(note.text, reasons),
        escalation_roles=ESCALATION_ROLES,
        escalation_methods=ESCALATION_METHODS,
        now_local=pages.local_input(now, tz),
        tz_name=getattr(tz, "key", "UTC"),
        typed=typed or {},  # the escalation or return form as it was posted, after an error
    )


async def cosign_note(request: web.Request) -> web.StreamResponse:
    principal = await require_supervision(request, Action.COSIGN_NOTE, "note.cosign")
    ref = request.match_info["note_ref"]
    try:
        sub = await request.app[EXCHANGE].supervision.cosign_note(
            ref, actor=actor_for(principal), at=now_utc()
        )
    except BridgeError as exc:
        return await inbox.home(request, principal, status=status_for(exc), error=error_for(request, exc))
    log.info("note co-signed from inbox", extra={"submission_id": sub.id, "event": sub.state})
    if sub.state == "held":
        # co-signed; what remains (an escalation) is on the note's page, where it can be recorded
        raise see_other(
            f"/inbox/notes/{sub.id}",
            msg="Co-signed. One thing remains before it is sent: record the escalation below.",
        )
    raise redirect_home(
        msg="Co-signed: the note is on its way to the clinic.", submitted=submitted_ids(request, sub.id)
    )


async def _refused_decision(
    request: web.Request, principal: Principal, ref: str, exc: BridgeError, form: MultiDictProxy[Any]
) -> web.Response:
    """A supervisor's decision the exchange refused: bad input shows the note again with what was
    typed; anything else goes home with the reason."""
    if isinstance(exc, InputError):
        return await _note(
            request,
            principal,
            ref,
            status=status_for(exc),
            error=error_for(request, exc),
            typed=form_dict(form),
        )
    return await inbox.home(request, principal, status=status_for(exc), error=error_for(request, exc))


async def return_note(request: web.Request) -> web.StreamResponse:
    principal = await require_supervision(request, Action.COSIGN_NOTE, "note.return")
    ref = request.match_info["note_ref"]
    form = await form_fields(request)
    try:
        held = await request.app[EXCHANGE].supervision.return_note(
            ref, str(form.get("comment", "")), actor=actor_for(principal), at=now_utc()
        )
    except BridgeError as exc:
        return await _refused_decision(request, principal, ref, exc, form)
    log.info("note returned from inbox", extra={"submission_id": held.submission_id, "event": "returned"})
    raise redirect_home(msg="Returned to the author with your comment.")


async def record_escalation(request: web.Request) -> web.StreamResponse:
    principal = await require_supervision(request, Action.ESCALATE_NOTE, "note.escalation")
    ref = request.match_info["note_ref"]
    form = await form_fields(request)
    supervision = request.app[EXCHANGE].supervision
    try:
        if form.get("escalation_ref"):  # an integration names its own Task or Communication
            req = parse(EscalationRequest, {"escalation_ref": str(form.get("escalation_ref", "")).strip()})
            sub = await supervision.record_escalation(
                ref, req.escalation_ref, actor=actor_for(principal), at=now_utc()
            )
        else:
            when = aware(str(form.get("when", "")), str(form.get("tz", "")) or "UTC", "when")
            sub = await supervision.record_escalation_made(
                ref,
                told=str(form.get("told", "")),
                role=str(form.get("role", "")),
                method=str(form.get("method", "")),
                when=datetime.fromisoformat(when),
                actor=actor_for(principal),
                at=now_utc(),
            )
    except BridgeError as exc:
        return await _refused_decision(request, principal, ref, exc, form)
    log.info("note escalation recorded from inbox", extra={"submission_id": sub.id, "event": sub.state})
    if sub.state == "held":
        msg = "Escalation recorded. The note still waits for a supervisor's co-signature."
    else:
        msg = "Escalation recorded: the note is on its way to the clinic."
    mine = await request.app[EXCHANGE].workspace.note(sub.id, actor=actor_for(principal))
    if mine is None and sub.state != "held":  # a supervisor's: out of their queue now
        raise redirect_home(msg=msg, submitted=submitted_ids(request, sub.id))
    raise see_other(f"/inbox/notes/{sub.id}", msg=msg)
