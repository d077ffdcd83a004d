"""The peer workspace: server-rendered pages with plain forms and a small script, no build step.

Pages (all under ``/inbox``): the home page (notes that need the reader, the supervisor's queue,
referrals open first with received and due dates in words, a status filter, search by name and
paging), the caseload, one referral (the minimum-necessary view with accept, decline from a pick
list, start, complete with the delivered sessions and notes to tick), the session form (everything
known prefilled: participant, referral, times in the browser's zone; the bridge makes the ids), the
note form (the billing fields the rules require, a live check that is the submission's own check,
the matched words marked), "my notes" (held, returned, sending, sent, failed, and what to do
next), one note (revise after a return, record an escalation, co-sign or return it with a comment),
and the supervisor's queue (risk first, then oldest). Forms post back and redirect
(post/redirect/get); an error shows the form again with everything typed.

Browsers sign in by posting their token (or a service API key) once; it is kept in an HttpOnly,
SameSite=Strict cookie, which a cross-site form cannot send.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bridge.domain import (
    Activity,
    Audience,
    ContactMethod,
    Participant,
    PeerEncounter,
    PeerNote,
    Referral,
    ReferralStatus,
    Setting,
    parse,
)
from bridge.errors import (
    AccessError,
    BridgeError,
    InputError,
    NotAuthenticatedError,
    NotFoundInStoreError,
    PolicyError,
    TooManyFailuresError,
)
from bridge.exchange.supervision import ESCALATION_METHODS, ESCALATION_ROLES
from bridge.exchange.task_state import PEER_ACTIONS, ReferralAction, peer_actions
from bridge.exchange.views import HeldNote
from bridge.exchange.workspace import CLOSED, OPEN, TAKEN
from bridge.web import csrf, pages
from bridge.web.errors import status_for
from bridge.web.handlers import authorize_supervision, load_referral
from bridge.web.keys import AUTH_THROTTLE, AUTHENTICATOR, EXCHANGE, SETTINGS
from bridge.web.models import EscalationRequest
from bridge.web.principal import Action, Principal, actor_for, has_required_scope, may_see_assignee
from bridge.web.requests import SESSION_COOKIE, authorize, form_fields

log = logging.getLogger("bridge.web.inbox")

# the button of each peer action without a form field of its own (decline and complete have one)
ACTION_LABELS = {ReferralAction.ACCEPT: "Accept", ReferralAction.START: "Start services"}
DONE_WORDS = {
    "accept": "Accepted",
    "decline": "Declined",
    "start": "Services started for",
    "complete": "Completed",
}
PAGE_SIZE = 20
FILTERS = {"open": OPEN, "closed": CLOSED, "all": None}
_OFFSET = re.compile(r"^[+\-]\d\d:\d\d$")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
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


def _see_other(path: str, **query: str) -> web.HTTPSeeOther:
    q = {k: v for k, v in query.items() if v}
    return web.HTTPSeeOther(path + (f"?{urlencode(q)}" if q else ""))


def _redirect(**query: str) -> web.HTTPSeeOther:
    return _see_other("/inbox", **query)


def _principal_or_none(request: web.Request) -> Principal | None:
    presented = request.cookies.get(SESSION_COOKIE) or {"Authorization", "X-API-Key"} & set(request.headers)
    if not presented:
        return None  # no credential at all: the sign-in page, not a failed sign-in (throttle)
    try:
        return authorize(request, Action.VIEW_INBOX)
    except NotAuthenticatedError:
        return None


def _may(principal: Principal, request: web.Request, action: Action) -> bool:
    exchange = request.app[EXCHANGE]
    org = principal.organization
    return bool(has_required_scope(principal, action, organization=org, permits=exchange.permits))


def _now() -> datetime:
    return datetime.now(UTC)


async def _name_of_peer(request: web.Request, peer_id: str | None) -> str:
    if not peer_id:
        return ""
    try:
        p = await request.app[EXCHANGE].directory.peer(peer_id)
    except InputError:
        return peer_id
    return f"{p.name.given} {p.name.family}"


async def _participant(request: web.Request, participant_id: str) -> Participant | None:
    try:
        return await request.app[EXCHANGE].directory.participant(participant_id)
    except InputError:
        return None


def _person(r: Referral) -> str:
    return f"{r.contact.name.given} {r.contact.name.family}" if r.contact else "Name not shared"


async def _held_queue(request: web.Request, principal: Principal) -> list[HeldNote]:
    """The supervisor's queue: risk first, then oldest first."""
    if not _may(principal, request, Action.COSIGN_NOTE):
        return []
    held = await request.app[EXCHANGE].supervision.list_held(actor=actor_for(principal))
    return sorted(held, key=lambda h: (not h.risk, h.held_since))


async def _render(
    request: web.Request,
    principal: Principal,
    template: str,
    *,
    status: int = 200,
    error: dict[str, Any] | None = None,
    title: str = "",
    queue: list[HeldNote] | None = None,
    **context: Any,
) -> web.Response:
    """A workspace page: the header, the navigation (with the queue's risk badge), the notice or
    error, and ``template``'s own content."""
    now = _now()
    tz = pages.zone(request.cookies.get(pages.TZ_COOKIE))
    if queue is None:
        queue = await _held_queue(request, principal)
    if "people" not in context:
        context["people"] = await _queue_people(request, queue)
    exchange = request.app[EXCHANGE]

    def when(value: datetime | None) -> str:
        return pages.when_words(value, now, tz)

    def at(value: datetime | None) -> str:
        return pages.time_words(value, now, tz)

    return _html(
        template,
        status=status,
        principal=principal,
        me=await _name_of_peer(request, principal.practitioner_id) or principal.subject,
        csrf_token=csrf.page_token(request),
        title=title,
        message=request.query.get("msg", ""),
        error=error,
        queue=queue,
        queue_risk=sum(1 for h in queue if h.risk),
        can_cosign=_may(principal, request, Action.COSIGN_NOTE),
        can_write=_may(principal, request, Action.SUBMIT_NOTE),
        can_act=_may(principal, request, Action.ACT_ON_REFERRAL),
        when=when,
        at=at,
        status_words=pages.STATUS_WORDS,
        note_state_words=pages.NOTE_STATE_WORDS,
        audience_words=pages.AUDIENCE_WORDS,
        satisfied_by=exchange.policy.satisfied_by,
        findings=pages.findings,
        highlight=pages.highlight,
        path=request.path,
        **context,
    )


def _error(request: web.Request, exc: BridgeError) -> dict[str, Any]:
    return pages.plain_error(exc, request.app[EXCHANGE].policy.satisfied_by)


def _visible_referrals(request: web.Request, principal: Principal, items: list[Any]) -> list[Referral]:
    only_own = request.app[SETTINGS].api_auth.peers_see_only_own
    return [
        i.referral
        for i in items
        if i.organization == principal.organization
        and may_see_assignee(principal, i.assignee, only_own=only_own)
    ]


async def _submissions(request: web.Request, principal: Principal) -> list[Any]:
    ids = [s for s in request.query.get("submitted", "").split(",") if s][-20:]
    out = []
    for sid in ids:
        try:
            sub = await request.app[EXCHANGE].submissions.get(sid)
        except BridgeError:
            continue
        if sub.organization == principal.organization:
            out.append(sub)
    return out


# --- pages ------------------------------------------------------------------------------------


async def _home(
    request: web.Request, principal: Principal, *, status: int = 200, error: dict[str, Any] | None = None
) -> web.Response:
    """Referrals (open first), filtered, searched and paged; what needs the reader first."""
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    show = request.query.get("show", "open")
    if show not in FILTERS and show not in {s.value for s in ReferralStatus}:
        show = "open"
    statuses = FILTERS.get(show, None) if show in FILTERS else (ReferralStatus(show),)
    q = request.query.get("q", "").strip()[:100]
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    only_own = request.app[SETTINGS].api_auth.peers_see_only_own
    start = (page - 1) * PAGE_SIZE
    if q or only_own:
        # a name lives in the referral's JSON: search (or per-peer visibility) reads the set and
        # pages it here
        items = await exchange.referrals.list(
            actor=actor, statuses=statuses, limit=5000, first=OPEN, containing=_prefilter(q)
        )
        visible = _visible_referrals(request, principal, items)
        if q:
            visible = [r for r in visible if q.lower() in _person(r).lower()]
        total, referrals = len(visible), visible[start : start + PAGE_SIZE]
    else:
        items = await exchange.referrals.list(
            actor=actor, statuses=statuses, limit=PAGE_SIZE, offset=start, first=OPEN
        )
        referrals = _visible_referrals(request, principal, items)
        total = await exchange.store.inbox.count(statuses=statuses)
    pages_total = max(1, -(-total // PAGE_SIZE))
    attention = []
    if _may(principal, request, Action.SUBMIT_NOTE):
        attention = [
            n
            for n in await exchange.workspace.notes(actor=actor)
            if n.state in ("held", "returned", "failed")
        ]

    def page_url(n: int) -> str:
        return "/inbox?" + urlencode({k: v for k, v in {"show": show, "q": q, "page": str(n)}.items() if v})

    return await _render(
        request,
        principal,
        "home.html",
        status=status,
        error=error,
        title="Referrals",
        referrals=referrals,
        actions={r.id: [a.value for a in peer_actions(r.status)] for r in referrals},
        action_labels={a.value: label for a, label in ACTION_LABELS.items()},
        person=_person,
        show=show,
        q=q,
        page=page,
        pages_total=pages_total,
        total=total,
        page_url=page_url,
        attention=attention,
        submissions=await _submissions(request, principal),
        refresh_url=request.path_qs,
        filters=[("open", "Open"), ("all", "All"), ("closed", "Closed")]
        + [(s.value, pages.STATUS_WORDS[s.value]) for s in ReferralStatus if s.value != "draft"],
    )


def _prefilter(q: str) -> str | None:
    """A word of the search the store can look for in the referrals' JSON text (the longest);
    None when the JSON would spell it differently (non-ASCII is escaped there, so are quotes)."""
    words = [w for w in q.split() if w.isascii() and '"' not in w and "\\" not in w]
    return max(words, key=len) if words and len(words) == len(q.split()) else None


async def inbox(request: web.Request) -> web.Response:
    principal = _principal_or_none(request)
    if principal is None:
        return _html("login.html", status=401, error=None)
    return await _home(request, principal)


def _require(request: web.Request, action: Action) -> Principal:
    try:
        return authorize(request, action)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/inbox") from None


async def caseload(request: web.Request) -> web.Response:
    principal = _require(request, Action.VIEW_INBOX)
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    items = await exchange.referrals.list(actor=actor, statuses=TAKEN, limit=1000)
    mine = [i.referral for i in items if i.assignee is not None and i.assignee == principal.practitioner_id]
    entries = await exchange.workspace.caseload(mine, actor=actor, now=_now())
    met = []
    for pid, last in await exchange.workspace.met_without_referral(actor=actor):
        p = await _participant(request, pid)
        if p is not None:
            met.append((p, last))
    return await _render(
        request, principal, "caseload.html", title="Caseload", entries=entries, person=_person, met=met
    )


async def referral_page(request: web.Request) -> web.Response:
    principal = _require(request, Action.READ_REFERRALS)
    rid = request.match_info["referral_id"]
    return await _referral(request, principal, rid)


async def _referral(
    request: web.Request,
    principal: Principal,
    rid: str,
    *,
    status: int = 200,
    error: dict[str, Any] | None = None,
) -> web.Response:
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    try:
        item = await load_referral(request, principal, rid)
    except NotFoundInStoreError:
        raise web.HTTPNotFound(text="No such referral.") from None
    r = item.referral
    sessions = await exchange.workspace.sessions(actor=actor, referral_id=r.id)
    outputs = await exchange.workspace.delivered_for(r.id, actor=actor) if "complete" in _actions(r) else []
    return await _render(
        request,
        principal,
        "referral.html",
        status=status,
        error=error,
        title=_person(r),
        r=r,
        person=_person(r),
        assignee=await _name_of_peer(request, item.assignee),
        actions=_actions(r),
        action_labels={a.value: label for a, label in ACTION_LABELS.items()},
        decline_reasons=pages.DECLINE_REASONS,
        sessions=sessions,
        outputs=outputs,
        can_log=r.status in TAKEN and _may(principal, request, Action.SUBMIT_ENCOUNTER),
    )


def _actions(r: Referral) -> list[str]:
    return [a.value for a in peer_actions(r.status)]


async def my_notes(request: web.Request) -> web.Response:
    principal = _require(request, Action.SUBMIT_NOTE)
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    notes = await exchange.workspace.notes(actor=actor)
    sessions = [s for s in await exchange.workspace.sessions(actor=actor) if not s.note_ids]
    names = {}
    for pid in {n.note.participant_id for n in notes} | {s.encounter.participant_id for s in sessions}:
        p = await _participant(request, pid)
        names[pid] = f"{p.name.given} {p.name.family}" if p else "Unknown participant"
    return await _render(
        request, principal, "notes.html", title="My notes", notes=notes, sessions=sessions, names=names
    )


async def queue_page(request: web.Request) -> web.Response:
    principal = _require(request, Action.COSIGN_NOTE)
    queue = await _held_queue(request, principal)
    return await _render(
        request,
        principal,
        "queue.html",
        title="Notes to review",
        queue=queue,
        people=await _queue_people(request, queue),
    )


async def _queue_people(request: web.Request, queue: list[HeldNote]) -> dict[str, str]:
    names: dict[str, str] = {}
    for h in queue:
        names[h.note.author_id] = await _name_of_peer(request, h.note.author_id)
        p = await _participant(request, h.note.participant_id)
        names[h.note.participant_id] = f"{p.name.given} {p.name.family}" if p else "Unknown participant"
    return names


# --- the session form ---------------------------------------------------------------------------


async def new_session(request: web.Request) -> web.Response:
    principal = _require(request, Action.SUBMIT_ENCOUNTER)
    fields = {k: request.query.get(k, "") for k in ("referral_id", "participant_id")}
    return await _session_form(request, principal, fields, fresh=True)


async def _session_form(
    request: web.Request,
    principal: Principal,
    fields: Mapping[str, Any],
    *,
    fresh: bool = False,
    status: int = 200,
    error: dict[str, Any] | None = None,
) -> web.Response:
    """The session form, prefilled with everything known (``fresh``) or as it was typed."""
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    tz = pages.zone(request.cookies.get(pages.TZ_COOKIE))
    form: dict[str, Any] = dict(fields)
    referral: Referral | None = None
    if form.get("referral_id"):
        try:
            referral = (await load_referral(request, principal, str(form["referral_id"]))).referral
        except NotFoundInStoreError:
            raise web.HTTPNotFound(text="No such referral.") from None
        if not form.get("participant_id"):
            found = await exchange.workspace.participant_for(referral)
            form["participant_id"] = found.id if found else ""
    participant = await _participant(request, str(form.get("participant_id") or ""))
    if fresh:
        sessions = await exchange.workspace.sessions(actor=actor)
        last = sessions[0].encounter if sessions else None
        minutes = await exchange.workspace.usual_minutes(actor=actor)
        end = _now().replace(second=0, microsecond=0)
        form.update(
            start=pages.local_input(end - timedelta(minutes=minutes), tz),
            end=pages.local_input(end, tz),
            tz=getattr(tz, "key", "UTC"),
            setting=last.setting.value if last else Setting.COMMUNITY.value,
            location_name=last.location_name if last else "",
            method=last.method.value if last else ContactMethod.FACE_TO_FACE.value,
            modality=last.modality.value if last else "individual",
            group_size=str(last.group_size) if last and last.group_size else "",
            activities=[a.value for a in last.activities] if last else [Activity.RECOVERY_COACHING.value],
        )
    return await _render(
        request,
        principal,
        "session_form.html",
        status=status,
        error=error,
        title="Log a session",
        form=form,
        referral=referral,
        person=_person(referral) if referral else "",
        participant=participant,
        settings_choices=[s.value for s in Setting],
        method_choices=[m.value for m in ContactMethod],
        activity_choices=[a.value for a in Activity],
    )


def _aware(local: str, tz: str, field: str) -> str:
    """A ``datetime-local`` value in the browser's zone (an IANA name the page's script sends, or
    a UTC offset as older pages did)."""
    if not local:
        raise InputError(field, "required")
    value = local if len(local) > 16 else f"{local}:00"
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(field, "must be a date and time") from None
    if naive.tzinfo is not None:
        return naive.isoformat()
    if _OFFSET.match(tz):
        return datetime.fromisoformat(f"{value}{tz}").isoformat()
    try:
        return naive.replace(tzinfo=ZoneInfo(tz or "UTC")).isoformat()
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("tz", "is not a time zone this server knows") from None


async def submit_encounter(request: web.Request) -> web.StreamResponse:
    principal = _require(request, Action.SUBMIT_ENCOUNTER)
    form = await form_fields(request)
    fields: dict[str, Any] = _fields(form)
    fields["activities"] = [str(a) for a in form.getall("activities", [])]
    exchange = request.app[EXCHANGE]
    try:
        if fields.get("referral_id") and not fields.get("participant_id"):
            ref = (await load_referral(request, principal, fields["referral_id"])).referral
            found = await exchange.workspace.participant_for(ref)
            if found is None:
                raise InputError(
                    "participant_id", "this referral's person is not in your participant list yet"
                )
            fields["participant_id"] = found.id
        tz = fields.get("tz") or "UTC"
        data: dict[str, Any] = {
            "id": fields.get("id") or f"ses-{uuid.uuid4().hex[:16]}",  # the bridge makes the id
            "participant_id": fields.get("participant_id", ""),
            "peer_id": principal.practitioner_id or "",
            "start": _aware(fields.get("start", ""), tz, "start"),
            "end": _aware(fields.get("end", ""), tz, "end"),
            "setting": fields.get("setting", ""),
            "location_name": fields.get("location_name", ""),
            "method": fields.get("method", "face-to-face"),
            "activities": fields["activities"],
            "modality": fields.get("modality") or "individual",
        }
        if data["modality"] == "group":
            size = str(fields.get("group_size", "")).strip()
            if not size.isdigit():
                raise InputError("group_size", "required for a group session: how many took part")
            data["group_size"] = int(size)
        if fields.get("referral_id"):
            data["referral_id"] = fields["referral_id"]
        encounter = parse(PeerEncounter, data)
        sub = await exchange.submissions.submit_encounter(encounter, actor=actor_for(principal))
    except BridgeError as exc:
        return await _session_form(
            request, principal, fields, status=status_for(exc), error=_error(request, exc)
        )
    if request.query.get("legacy") or fields.get("id"):
        # an id typed by an older client: the status list it expects
        raise _redirect(msg=f"Session {encounter.id} queued.", submitted=_submitted(request, sub.id))
    raise _see_other(
        "/inbox/notes/new",
        session=encounter.id,
        msg="Session saved. Now write the note while it is fresh.",
    )


def _submitted(request: web.Request, sid: str) -> str:
    prior = [s for s in request.query.get("submitted", "").split(",") if s]
    return ",".join([*prior, sid][-20:])


def _fields(form: MultiDictProxy[Any]) -> dict[str, Any]:
    return {k: str(form.get(k, "")) for k in form}


# --- the note form ------------------------------------------------------------------------------


async def new_note(request: web.Request) -> web.Response:
    principal = _require(request, Action.SUBMIT_NOTE)
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
    participant = await _participant(request, str(form.get("participant_id", "")))
    text = str(form.get("text", ""))
    return await _render(
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
        "written_at": _now().isoformat(),
    }
    for key in ("encounter_id", "summary", "goal", "progress"):
        if str(fields.get(key, "")).strip():
            data[key] = str(fields[key]).strip()
    return data


async def submit_note(request: web.Request) -> web.StreamResponse:
    principal = _require(request, Action.SUBMIT_NOTE)
    fields = _fields(await form_fields(request))
    try:
        note = parse(PeerNote, _note_data(principal, fields))
        sub = await request.app[EXCHANGE].submissions.submit_note(note, actor=actor_for(principal))
    except BridgeError as exc:
        return await _note_form(
            request, principal, fields, status=status_for(exc), error=_error(request, exc)
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
        raise _redirect(msg=f"Note {note.id} queued.", submitted=_submitted(request, sub.id))
    raise _see_other(f"/inbox/notes/{sub.id}", msg=msg)


async def check_note(request: web.Request) -> web.Response:
    """The live check: the submission's own check on the form as it is now (nothing stored).
    Answers JSON (verdict, findings with their spans) for the page's script."""
    principal = _require(request, Action.CHECK_NOTE)
    fields = _fields(await form_fields(request))
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


# --- one note -----------------------------------------------------------------------------------


async def note_page(request: web.Request) -> web.Response:
    principal = _require(request, Action.VIEW_INBOX)
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
        if _may(principal, request, Action.SUBMIT_NOTE)
        else None
    )
    queue = await _held_queue(request, principal)
    held = next((h for h in queue if h.submission_id == sid), None)
    if mine is None and held is None:
        raise web.HTTPNotFound(text="No such note for you.")
    note = mine.note if mine is not None else held.note if held is not None else None
    assert note is not None
    reasons = mine.hold_reasons if mine is not None else held.waiting_for if held is not None else []
    risk = pages.is_risk(reasons, exchange.policy.satisfied_by)
    participant = await _participant(request, note.participant_id)
    now = _now()
    tz = pages.zone(request.cookies.get(pages.TZ_COOKIE))
    return await _render(
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
        author=await _name_of_peer(request, note.author_id),
        cosigner=await _name_of_peer(request, note.cosigner_id),
        participant=participant,
        marked=pages.highlight(note.text, reasons),
        escalation_roles=ESCALATION_ROLES,
        escalation_methods=ESCALATION_METHODS,
        now_local=pages.local_input(now, tz),
        tz_name=getattr(tz, "key", "UTC"),
        typed=typed or {},  # the escalation or return form as it was posted, after an error
    )


async def _require_supervision(request: web.Request, action: Action, audited: str) -> Principal:
    try:
        return await authorize_supervision(request, action, audited)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/inbox") from None


async def cosign_note(request: web.Request) -> web.StreamResponse:
    principal = await _require_supervision(request, Action.COSIGN_NOTE, "note.cosign")
    ref = request.match_info["note_ref"]
    try:
        sub = await request.app[EXCHANGE].supervision.cosign_note(ref, actor=actor_for(principal), at=_now())
    except BridgeError as exc:
        return await _home(request, principal, status=status_for(exc), error=_error(request, exc))
    log.info("note co-signed from inbox", extra={"submission_id": sub.id, "event": sub.state})
    if sub.state == "held":
        # co-signed; what remains (an escalation) is on the note's page, where it can be recorded
        raise _see_other(
            f"/inbox/notes/{sub.id}",
            msg="Co-signed. One thing remains before it is sent: record the escalation below.",
        )
    raise _redirect(
        msg="Co-signed: the note is on its way to the clinic.", submitted=_submitted(request, sub.id)
    )


async def return_note(request: web.Request) -> web.StreamResponse:
    principal = await _require_supervision(request, Action.COSIGN_NOTE, "note.return")
    ref = request.match_info["note_ref"]
    form = await form_fields(request)
    try:
        held = await request.app[EXCHANGE].supervision.return_note(
            ref, str(form.get("comment", "")), actor=actor_for(principal), at=_now()
        )
    except BridgeError as exc:
        if isinstance(exc, InputError):
            return await _note(
                request,
                principal,
                ref,
                status=status_for(exc),
                error=_error(request, exc),
                typed=_fields(form),
            )
        return await _home(request, principal, status=status_for(exc), error=_error(request, exc))
    log.info("note returned from inbox", extra={"submission_id": held.submission_id, "event": "returned"})
    raise _redirect(msg="Returned to the author with your comment.")


async def record_escalation(request: web.Request) -> web.StreamResponse:
    principal = await _require_supervision(request, Action.ESCALATE_NOTE, "note.escalation")
    ref = request.match_info["note_ref"]
    form = await form_fields(request)
    supervision = request.app[EXCHANGE].supervision
    try:
        if form.get("escalation_ref"):  # an integration names its own Task or Communication
            req = parse(EscalationRequest, {"escalation_ref": str(form.get("escalation_ref", "")).strip()})
            sub = await supervision.record_escalation(
                ref, req.escalation_ref, actor=actor_for(principal), at=_now()
            )
        else:
            when = _aware(str(form.get("when", "")), str(form.get("tz", "")) or "UTC", "when")
            sub = await supervision.record_escalation_made(
                ref,
                told=str(form.get("told", "")),
                role=str(form.get("role", "")),
                method=str(form.get("method", "")),
                when=datetime.fromisoformat(when),
                actor=actor_for(principal),
                at=_now(),
            )
    except BridgeError as exc:
        if isinstance(exc, InputError):
            return await _note(
                request,
                principal,
                ref,
                status=status_for(exc),
                error=_error(request, exc),
                typed=_fields(form),
            )
        return await _home(request, principal, status=status_for(exc), error=_error(request, exc))
    log.info("note escalation recorded from inbox", extra={"submission_id": sub.id, "event": sub.state})
    if sub.state == "held":
        msg = "Escalation recorded. The note still waits for a supervisor's co-signature."
    else:
        msg = "Escalation recorded: the note is on its way to the clinic."
    mine = await request.app[EXCHANGE].workspace.note(sub.id, actor=actor_for(principal))
    if mine is None and sub.state != "held":  # a supervisor's: out of their queue now
        raise _redirect(msg=msg, submitted=_submitted(request, sub.id))
    raise _see_other(f"/inbox/notes/{sub.id}", msg=msg)


# --- referral actions ---------------------------------------------------------------------------


async def referral_action(request: web.Request) -> web.StreamResponse:
    principal = _require(request, Action.ACT_ON_REFERRAL)
    action = request.match_info["action"]
    referral_id = request.match_info["referral_id"]
    if action not in {a.value for a in PEER_ACTIONS}:
        raise web.HTTPNotFound()
    form = await form_fields(request)
    reason = " ".join(str(form.get("reason", "")).split()) or None
    outputs = [o.strip() for v in form.getall("outputs", []) for o in str(v).split(",") if o.strip()]
    try:
        item = await load_referral(request, principal, referral_id)
        await request.app[EXCHANGE].referrals.act(
            referral_id, action, actor=actor_for(principal), reason=reason, outputs=outputs, at=_now()
        )
    except BridgeError as exc:
        if form.get("back") == "referral":
            return await _referral(
                request, principal, referral_id, status=status_for(exc), error=_error(request, exc)
            )
        return await _home(request, principal, status=status_for(exc), error=_error(request, exc))
    log.info("referral updated from inbox", extra={"referral_id": referral_id, "event": action})
    msg = f"{DONE_WORDS.get(action, action)}: {_person(item.referral)}'s referral."
    if form.get("back") == "referral" or action == "accept":
        raise _see_other(f"/inbox/referrals/{referral_id}", msg=msg)
    raise _redirect(msg=msg, submitted=request.query.get("submitted", ""))


# --- sign-in ----------------------------------------------------------------------------------


def _https(request: web.Request) -> bool:
    """Whether the browser reached us over TLS: directly, by the configured public URL, or by a
    proxy's ``X-Forwarded-Proto`` when the integrator said that header can be trusted."""
    server = request.app[SETTINGS].server
    if request.secure or (server.public_url or "").startswith("https://"):
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return server.trust_forwarded_proto and forwarded == "https"


async def login(request: web.Request) -> web.StreamResponse:
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
    resp.set_cookie(
        SESSION_COOKIE,
        f"{kind}:{credential}",
        httponly=True,
        samesite="Strict",
        path="/",
        # behind a TLS proxy the request itself is plain http: the public URL says what browsers use
        secure=_https(request),
    )
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    resp = web.Response(status=303, headers={"Location": "/inbox"})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


def setup(app: web.Application) -> None:
    """Register the workspace routes (HTML; not part of the OpenAPI document) and their CSRF guard."""
    app.middlewares.append(csrf.csrf_guard)  # inside the error mapping: a refusal is a JSON 403
    add_get, add_post = app.router.add_get, app.router.add_post
    add_get("/inbox", inbox, name="inbox")
    add_get("/inbox/caseload", caseload, name="inbox_caseload")
    add_get("/inbox/my-notes", my_notes, name="inbox_my_notes")
    add_get("/inbox/queue", queue_page, name="inbox_queue")
    add_get("/inbox/referrals/{referral_id}", referral_page, name="inbox_referral_page")
    add_get("/inbox/sessions/new", new_session, name="inbox_new_session")
    add_get("/inbox/notes/new", new_note, name="inbox_new_note")
    add_get("/inbox/notes/{note_ref}", note_page, name="inbox_note_page")
    add_post("/inbox/login", login, name="inbox_login")
    add_post("/inbox/logout", logout, name="inbox_logout")
    add_post("/inbox/referrals/{referral_id}/{action}", referral_action, name="inbox_referral")
    add_post("/inbox/encounters", submit_encounter, name="inbox_encounter")
    add_post("/inbox/notes", submit_note, name="inbox_note")
    add_post("/inbox/notes/check", check_note, name="inbox_note_check")
    add_post("/inbox/notes/{note_ref}/cosign", cosign_note, name="inbox_cosign")
    add_post("/inbox/notes/{note_ref}/return", return_note, name="inbox_return")
    add_post("/inbox/notes/{note_ref}/escalation", record_escalation, name="inbox_escalation")
