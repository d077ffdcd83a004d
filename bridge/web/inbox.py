"""The peer inbox page ``/inbox``: server-rendered HTML, plain forms, no JS build step.

Referrals in the peer view with accept/decline (with a reason)/start/complete, a form to log a
session and one to write a note (with live scope feedback from ``/api/v1/notes/check`` through a
small static script), and the status of what was submitted. A peer supervisor also sees the held
notes they may co-sign (the note, what holds it) with a co-sign button, and a form to record the
escalation (Task or Communication) a risk-of-harm hold waits for. Forms post back here and redirect
(post/redirect/get); a refused note is shown again with the rule and words that blocked it.

People sign in with the organization's OpenID Provider (``bridge.web.signin``); without one, by
posting a token (or a service API key) once. Either way the browser then holds only a random
session id (HttpOnly, SameSite=Strict), the session itself is in the store (``bridge.web.sessions``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bridge.domain import Activity, Audience, ContactMethod, PeerEncounter, PeerNote, Setting, parse
from bridge.errors import (
    AccessError,
    BridgeError,
    ForbiddenError,
    InputError,
    NotAuthenticatedError,
    TooManyFailuresError,
)
from bridge.exchange.task_state import PEER_ACTIONS, ReferralAction, peer_actions
from bridge.web import csrf, signin
from bridge.web.errors import status_for
from bridge.web.handlers import authorize_supervision, load_referral
from bridge.web.keys import AUTH_THROTTLE, AUTHENTICATOR, EXCHANGE, SETTINGS
from bridge.web.models import EscalationRequest
from bridge.web.principal import Action, Principal, actor_for, has_required_scope, may_see_assignee
from bridge.web.requests import authenticate, authorize, form_fields
from bridge.web.sessions import start_session

log = logging.getLogger("bridge.web.inbox")

# the button of each peer action without a form field of its own (decline and complete have one)
ACTION_LABELS = {ReferralAction.ACCEPT: "Accept", ReferralAction.START: "Start services"}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("bridge.web", "templates"),  # package data, read via importlib
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _html(template: str, status: int = 200, **context: Any) -> web.Response:
    body = _env.get_template(template).render(**context)
    resp = web.Response(status=status, text=body, content_type="text/html")
    # the page shows PHI: never cache it, never frame it
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    return resp


def _redirect(**query: str) -> web.HTTPSeeOther:
    q = {k: v for k, v in query.items() if v}
    return web.HTTPSeeOther("/inbox" + (f"?{urlencode(q)}" if q else ""))


def _principal_or_none(request: web.Request) -> Principal | None:
    try:
        return authorize(request, Action.VIEW_INBOX)
    except NotAuthenticatedError:
        return None


async def _page(
    request: web.Request,
    principal: Principal,
    *,
    status: int = 200,
    error: dict[str, Any] | None = None,
    note_form: dict[str, str] | None = None,
    session_form: dict[str, str] | None = None,
) -> web.Response:
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    only_own = request.app[SETTINGS].api_auth.peers_see_only_own
    items = await exchange.referrals.list(actor=actor, limit=500)
    referrals = [
        i.referral
        for i in items
        if i.organization == principal.organization
        and may_see_assignee(principal, i.assignee, only_own=only_own)
    ]
    ids = [s for s in request.query.get("submitted", "").split(",") if s][-20:]
    submissions = []
    for sid in ids:
        try:
            sub = await exchange.submissions.get(sid)
        except BridgeError:
            continue
        if sub.organization == principal.organization:
            submissions.append(sub)
    org = principal.organization
    permits = exchange.permits
    can_cosign = bool(has_required_scope(principal, Action.COSIGN_NOTE, organization=org, permits=permits))
    held = await exchange.supervision.list_held(actor=actor) if can_cosign else []
    # the author sees their own held notes ("waiting for co-sign"), so work is not written twice
    can_write = bool(has_required_scope(principal, Action.SUBMIT_NOTE, organization=org, permits=permits))
    my_held = await exchange.supervision.list_held(actor=actor, mine=True) if can_write else []
    return _html(
        "inbox.html",
        status=status,
        principal=principal,
        csrf_token=csrf.page_token(request),
        referrals=referrals,
        actions={r.id: [a.value for a in peer_actions(r.status)] for r in referrals},
        action_labels={a.value: label for a, label in ACTION_LABELS.items()},
        submissions=submissions,
        held=held,
        can_cosign=can_cosign,
        can_write=can_write,
        my_held=my_held,
        refresh_url=request.path_qs,
        message=request.query.get("msg", ""),
        error=error,
        can_act=bool(
            has_required_scope(principal, Action.ACT_ON_REFERRAL, organization=org, permits=permits)
        ),
        can_submit=bool(has_required_scope(principal, Action.SUBMIT_NOTE, organization=org, permits=permits)),
        note_form=note_form or {},
        session_form=session_form or {},
        settings_choices=[s.value for s in Setting],
        method_choices=[m.value for m in ContactMethod],
        activity_choices=[a.value for a in Activity],
        audience_choices=[a.value for a in Audience],
    )


def _error(exc: BridgeError) -> dict[str, Any]:
    d = exc.to_dict()
    d.setdefault("violations", [])  # the template asks for them (strict undefined) whatever the error
    for v in d.get("violations") or []:
        # evidence comes as strings or as {text, start, end} spans of the note
        ev = v.get("evidence")
        items = ev if isinstance(ev, (list, tuple)) else [ev] if ev else []
        v["evidence"] = [str(e.get("text", "")) if isinstance(e, dict) else str(e) for e in items]
    return d


def _submitted(request: web.Request, sid: str) -> str:
    prior = [s for s in request.query.get("submitted", "").split(",") if s]
    return ",".join([*prior, sid][-20:])


# --- handlers ---------------------------------------------------------------------------------


async def inbox(request: web.Request) -> web.Response:
    try:
        principal = _principal_or_none(request)
    except ForbiddenError:
        return signin.no_inbox_page(request, authenticate(request, allow_cookie=True))
    if principal is None:
        return signin.signed_out_page(request)
    return await _page(request, principal)


async def login(request: web.Request) -> web.StreamResponse:
    """The token form, only when no identity provider is configured (see ``bridge.web.signin``)."""
    if signin.configured(request):
        raise web.HTTPNotFound()
    form = await form_fields(request)
    credential = str(form.get("credential", "")).strip()
    auth = request.app[AUTHENTICATOR]
    kind = "jwt" if credential.count(".") == 2 else "key"
    throttle, source = request.app[AUTH_THROTTLE], request.remote or "unknown"
    try:
        throttle.check(source)  # a guessing page is slowed down like a guessing API client
        try:
            if kind == "jwt":
                principal = auth.authenticate(f"Bearer {credential}", None)
            else:
                principal = auth.authenticate(None, credential)
        except NotAuthenticatedError as exc:
            throttle.failed(source, "bearer" if kind == "jwt" else "api_key", exc)
            raise
        org = request.app[SETTINGS].organization.id
        permits = request.app[EXCHANGE].permits
        if not has_required_scope(principal, Action.VIEW_INBOX, organization=org, permits=permits):
            raise AccessError("this account may not use the peer inbox")
    except AccessError as exc:
        status = 403
        if isinstance(exc, NotAuthenticatedError):
            status = 401
        elif isinstance(exc, TooManyFailuresError):
            status = 429
        return _html("login.html", status=status, error=exc.message)
    resp = web.Response(status=303, headers={"Location": "/inbox"})
    # a server-side session: the cookie is a new random id, never the credential itself
    await start_session(request, principal, resp)
    return resp


def _require(request: web.Request, action: Action) -> Principal:
    try:
        return authorize(request, action)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/inbox") from None


async def referral_action(request: web.Request) -> web.StreamResponse:
    principal = _require(request, Action.ACT_ON_REFERRAL)
    action = request.match_info["action"]
    referral_id = request.match_info["referral_id"]
    if action not in {a.value for a in PEER_ACTIONS}:
        raise web.HTTPNotFound()
    form = await form_fields(request)
    reason = str(form.get("reason", "")).strip() or None
    outputs = [o.strip() for o in str(form.get("outputs", "")).split(",") if o.strip()]
    try:
        await load_referral(request, principal, referral_id)
        await request.app[EXCHANGE].referrals.act(
            referral_id,
            action,
            actor=actor_for(principal),
            reason=reason,
            outputs=outputs,
            at=datetime.now(UTC),
        )
    except BridgeError as exc:
        return await _page(request, principal, status=status_for(exc), error=_error(exc))
    log.info("referral updated from inbox", extra={"referral_id": referral_id, "event": action})
    raise _redirect(
        msg=f"Referral {referral_id}: {action} done.", submitted=request.query.get("submitted", "")
    )


def _fields(form: MultiDictProxy[Any]) -> dict[str, str]:
    return {k: str(form.get(k, "")) for k in form}


def _aware(local: str, tz: str, field: str) -> str:
    # datetime-local has no zone: the page sends the browser's UTC offset next to it
    if not local:
        raise InputError(field, "required")
    value = local if len(local) > 16 else f"{local}:00"
    try:
        return datetime.fromisoformat(f"{value}{tz}").isoformat()
    except ValueError:
        raise InputError(field, "must be a date and time with a UTC offset") from None


async def submit_encounter(request: web.Request) -> web.StreamResponse:
    principal = _require(request, Action.SUBMIT_ENCOUNTER)
    form = await form_fields(request)
    fields = _fields(form)
    try:
        tz = fields.get("tz") or "+00:00"
        data: dict[str, Any] = {
            "id": fields.get("id", ""),
            "participant_id": fields.get("participant_id", ""),
            "peer_id": principal.practitioner_id or "",
            "start": _aware(fields.get("start", ""), tz, "start"),
            "end": _aware(fields.get("end", ""), tz, "end"),
            "setting": fields.get("setting", ""),
            "location_name": fields.get("location_name", ""),
            "method": fields.get("method", "face-to-face"),
            "activities": [str(a) for a in form.getall("activities", [])],
        }
        if fields.get("referral_id"):
            data["referral_id"] = fields["referral_id"]
        encounter = parse(PeerEncounter, data)
        sub = await request.app[EXCHANGE].submissions.submit_encounter(encounter, actor=actor_for(principal))
    except BridgeError as exc:
        return await _page(request, principal, status=status_for(exc), error=_error(exc), session_form=fields)
    raise _redirect(msg=f"Session {encounter.id} queued.", submitted=_submitted(request, sub.id))


async def submit_note(request: web.Request) -> web.StreamResponse:
    principal = _require(request, Action.SUBMIT_NOTE)
    fields = _fields(await form_fields(request))
    try:
        data: dict[str, Any] = {
            "id": fields.get("id", ""),
            "participant_id": fields.get("participant_id", ""),
            "author_id": principal.practitioner_id or "",
            "audience": fields.get("audience", ""),
            "text": fields.get("text", ""),
            "written_at": datetime.now(UTC).isoformat(),
        }
        for key in ("encounter_id", "goal", "progress"):
            if fields.get(key):
                data[key] = fields[key]
        note = parse(PeerNote, data)
        sub = await request.app[EXCHANGE].submissions.submit_note(note, actor=actor_for(principal))
    except BridgeError as exc:
        return await _page(request, principal, status=status_for(exc), error=_error(exc), note_form=fields)
    if sub.state == "held":
        waits = ", ".join(dict.fromkeys(str(v.get("rule")) for v in sub.hold_reasons))
        msg = f"Note {note.id} saved and held until resolved ({waits}); it is sent once resolved."
    else:
        msg = f"Note {note.id} queued."
    raise _redirect(msg=msg, submitted=_submitted(request, sub.id))


async def _require_supervision(request: web.Request, action: Action, audited: str) -> Principal:
    try:
        return await authorize_supervision(request, action, audited)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/inbox") from None


async def cosign_note(request: web.Request) -> web.StreamResponse:
    principal = await _require_supervision(request, Action.COSIGN_NOTE, "note.cosign")
    ref = request.match_info["note_ref"]
    try:
        sub = await request.app[EXCHANGE].supervision.cosign_note(
            ref, actor=actor_for(principal), at=datetime.now(UTC)
        )
    except BridgeError as exc:
        return await _page(request, principal, status=status_for(exc), error=_error(exc))
    log.info("note co-signed from inbox", extra={"submission_id": sub.id, "event": sub.state})
    state = "queued for delivery" if sub.state == "queued" else f"still {sub.state}"
    raise _redirect(msg=f"Note {sub.record_id} co-signed: {state}.", submitted=_submitted(request, sub.id))


async def record_escalation(request: web.Request) -> web.StreamResponse:
    principal = await _require_supervision(request, Action.ESCALATE_NOTE, "note.escalation")
    ref = request.match_info["note_ref"]
    form = await form_fields(request)
    try:
        req = parse(EscalationRequest, {"escalation_ref": str(form.get("escalation_ref", "")).strip()})
        sub = await request.app[EXCHANGE].supervision.record_escalation(
            ref, req.escalation_ref, actor=actor_for(principal), at=datetime.now(UTC)
        )
    except BridgeError as exc:
        return await _page(request, principal, status=status_for(exc), error=_error(exc))
    log.info("note escalation recorded from inbox", extra={"submission_id": sub.id, "event": sub.state})
    state = "queued for delivery" if sub.state == "queued" else f"still {sub.state}"
    raise _redirect(
        msg=f"Escalation recorded for note {sub.record_id}: {state}.", submitted=_submitted(request, sub.id)
    )


def setup(app: web.Application) -> None:
    """Register the inbox routes (HTML; not part of the OpenAPI document) and their CSRF guard."""
    app.middlewares.append(csrf.csrf_guard)  # inside the error mapping: a refusal is a JSON 403
    app.router.add_get("/inbox", inbox, name="inbox")
    app.router.add_post("/inbox/login", login, name="inbox_login")
    app.router.add_post("/inbox/logout", signin.logout, name="inbox_logout")
    app.router.add_post("/inbox/referrals/{referral_id}/{action}", referral_action, name="inbox_referral")
    app.router.add_post("/inbox/encounters", submit_encounter, name="inbox_encounter")
    app.router.add_post("/inbox/notes", submit_note, name="inbox_note")
    app.router.add_post("/inbox/notes/{note_ref}/cosign", cosign_note, name="inbox_cosign")
    app.router.add_post("/inbox/notes/{note_ref}/escalation", record_escalation, name="inbox_escalation")
