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
(post/redirect/get); an error shows the form again with everything typed. The note pages live in
:mod:`bridge.web.note_pages`, what every page shares in :mod:`bridge.web.page`; ``setup`` here
registers them all.

People sign in with the organization's OpenID Provider (``bridge.web.signin``); without one, by
posting a token (or a service API key) once. Either way the browser then holds only a random
session id (HttpOnly, SameSite=Strict), the session itself is in the store (``bridge.web.sessions``).

Longer than most modules (~500 lines): it holds the workspace's route table and the pages the
route table names (home, caseload, referral, session form, my notes, queue), one short handler
each; the note pages already live apart (``note_pages``), as does what every page shares
(``page``), and a further split would scatter one page's handler from its neighbours' routes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bridge.domain import (
    Activity,
    ContactMethod,
    PeerEncounter,
    Referral,
    ReferralStatus,
    Setting,
    parse,
)
from bridge.errors import (
    AccessError,
    BridgeError,
    ForbiddenError,
    InputError,
    NotAuthenticatedError,
    NotFoundInStoreError,
    TooManyFailuresError,
)
from bridge.exchange.task_state import PEER_ACTIONS, ReferralAction, peer_actions
from bridge.exchange.workspace import CLOSED, OPEN, TAKEN
from bridge.web import csrf, pages, signin
from bridge.web.errors import status_for
from bridge.web.handlers import load_referral
from bridge.web.keys import EXCHANGE, SETTINGS
from bridge.web.page import (
    aware,
    error_for,
    find_participant,
    form_dict,
    held_queue,
    html,
    may,
    now_utc,
    peer_name,
    person_name,
    queue_people,
    redirect_home,
    render,
    require,
    see_other,
    submitted_ids,
)
from bridge.web.principal import Action, Principal, actor_for, may_see_assignee
from bridge.web.requests import SESSION_COOKIE, authenticate, authorize, form_fields
from bridge.web.sessions import credential_principal, start_session

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


def _principal_or_none(request: web.Request) -> Principal | None:
    presented = request.cookies.get(SESSION_COOKIE) or {"Authorization", "X-API-Key"} & set(request.headers)
    if not presented:
        return None  # no credential at all: the sign-in page, not a failed sign-in (throttle)
    try:
        return authorize(request, Action.VIEW_INBOX)
    except NotAuthenticatedError:
        return None


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


async def home(
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
            visible = [r for r in visible if q.lower() in person_name(r).lower()]
        total, referrals = len(visible), visible[start : start + PAGE_SIZE]
    else:
        items = await exchange.referrals.list(
            actor=actor, statuses=statuses, limit=PAGE_SIZE, offset=start, first=OPEN
        )
        referrals = _visible_referrals(request, principal, items)
        total = await exchange.store.inbox.count(statuses=statuses)
    pages_total = max(1, -(-total // PAGE_SIZE))
    attention = []
    if may(principal, request, Action.SUBMIT_NOTE):
        attention = [
            n
            for n in await exchange.workspace.notes(actor=actor)
            if n.state in ("held", "returned", "failed")
        ]

    def page_url(n: int) -> str:
        return "/inbox?" + urlencode({k: v for k, v in {"show": show, "q": q, "page": str(n)}.items() if v})

    return await render(
        request,
        principal,
        "home.html",
        status=status,
        error=error,
        title="Referrals",
        referrals=referrals,
        actions={r.id: [a.value for a in peer_actions(r.status)] for r in referrals},
        action_labels={a.value: label for a, label in ACTION_LABELS.items()},
        person=person_name,
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
    try:
        principal = _principal_or_none(request)
    except ForbiddenError:  # signed in, but not someone the inbox is for (an integrator)
        return signin.no_inbox_page(request, authenticate(request, allow_cookie=True))
    if principal is None:
        return signin.signed_out_page(request)
    return await home(request, principal)


async def caseload(request: web.Request) -> web.Response:
    principal = require(request, Action.VIEW_INBOX)
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    items = await exchange.referrals.list(actor=actor, statuses=TAKEN, limit=1000)
    mine = [i.referral for i in items if i.assignee is not None and i.assignee == principal.practitioner_id]
    entries = await exchange.workspace.caseload(mine, actor=actor, now=now_utc())
    met = []
    for pid, last in await exchange.workspace.met_without_referral(actor=actor):
        p = await find_participant(request, pid)
        if p is not None:
            met.append((p, last))
    return await render(
        request, principal, "caseload.html", title="Caseload", entries=entries, person=person_name, met=met
    )


async def referral_page(request: web.Request) -> web.Response:
    principal = require(request, Action.READ_REFERRALS)
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
    return await render(
        request,
        principal,
        "referral.html",
        status=status,
        error=error,
        title=person_name(r),
        r=r,
        person=person_name(r),
        assignee=await peer_name(request, item.assignee),
        actions=_actions(r),
        action_labels={a.value: label for a, label in ACTION_LABELS.items()},
        decline_reasons=pages.DECLINE_REASONS,
        sessions=sessions,
        outputs=outputs,
        can_log=r.status in TAKEN and may(principal, request, Action.SUBMIT_ENCOUNTER),
    )


def _actions(r: Referral) -> list[str]:
    return [a.value for a in peer_actions(r.status)]


async def my_notes(request: web.Request) -> web.Response:
    principal = require(request, Action.SUBMIT_NOTE)
    exchange = request.app[EXCHANGE]
    actor = actor_for(principal)
    notes = await exchange.workspace.notes(actor=actor)
    sessions = [s for s in await exchange.workspace.sessions(actor=actor) if not s.note_ids]
    names = {}
    for pid in {n.note.participant_id for n in notes} | {s.encounter.participant_id for s in sessions}:
        p = await find_participant(request, pid)
        names[pid] = f"{p.name.given} {p.name.family}" if p else "Unknown participant"
    return await render(
        request, principal, "notes.html", title="My notes", notes=notes, sessions=sessions, names=names
    )


async def queue_page(request: web.Request) -> web.Response:
    principal = require(request, Action.COSIGN_NOTE)
    queue = await held_queue(request, principal)
    return await render(
        request,
        principal,
        "queue.html",
        title="Notes to review",
        queue=queue,
        people=await queue_people(request, queue),
    )


# --- the session form ---------------------------------------------------------------------------


async def new_session(request: web.Request) -> web.Response:
    principal = require(request, Action.SUBMIT_ENCOUNTER)
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
    participant = await find_participant(request, str(form.get("participant_id") or ""))
    if fresh:
        sessions = await exchange.workspace.sessions(actor=actor)
        last = sessions[0].encounter if sessions else None
        minutes = await exchange.workspace.usual_minutes(actor=actor)
        end = now_utc().replace(second=0, microsecond=0)
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
    return await render(
        request,
        principal,
        "session_form.html",
        status=status,
        error=error,
        title="Log a session",
        form=form,
        referral=referral,
        person=person_name(referral) if referral else "",
        participant=participant,
        settings_choices=[s.value for s in Setting],
        method_choices=[m.value for m in ContactMethod],
        activity_choices=[a.value for a in Activity],
    )


async def submit_encounter(request: web.Request) -> web.StreamResponse:
    principal = require(request, Action.SUBMIT_ENCOUNTER)
    form = await form_fields(request)
    fields: dict[str, Any] = form_dict(form)
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
            "start": aware(fields.get("start", ""), tz, "start"),
            "end": aware(fields.get("end", ""), tz, "end"),
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
            request, principal, fields, status=status_for(exc), error=error_for(request, exc)
        )
    if request.query.get("legacy") or fields.get("id"):
        # an id typed by an older client: the status list it expects
        raise redirect_home(msg=f"Session {encounter.id} queued.", submitted=submitted_ids(request, sub.id))
    raise see_other(
        "/inbox/notes/new",
        session=encounter.id,
        msg="Session saved. Now write the note while it is fresh.",
    )


# --- referral actions ---------------------------------------------------------------------------


async def referral_action(request: web.Request) -> web.StreamResponse:
    principal = require(request, Action.ACT_ON_REFERRAL)
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
            referral_id, action, actor=actor_for(principal), reason=reason, outputs=outputs, at=now_utc()
        )
    except BridgeError as exc:
        if form.get("back") == "referral":
            return await _referral(
                request, principal, referral_id, status=status_for(exc), error=error_for(request, exc)
            )
        return await home(request, principal, status=status_for(exc), error=error_for(request, exc))
    log.info("referral updated from inbox", extra={"referral_id": referral_id, "event": action})
    msg = f"{DONE_WORDS.get(action, action)}: {person_name(item.referral)}'s referral."
    if form.get("back") == "referral" or action == "accept":
        raise see_other(f"/inbox/referrals/{referral_id}", msg=msg)
    raise redirect_home(msg=msg, submitted=request.query.get("submitted", ""))


# --- sign-in ----------------------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    """The token form, only when no identity provider is configured (see ``bridge.web.signin``)."""
    if signin.configured(request):
        raise web.HTTPNotFound()
    form = await form_fields(request)
    try:
        principal = credential_principal(
            request,
            str(form.get("credential", "")),
            Action.VIEW_INBOX,
            "this account may not use the peer inbox",
        )
    except AccessError as exc:
        status = 403
        if isinstance(exc, NotAuthenticatedError):
            status = 401
        elif isinstance(exc, TooManyFailuresError):
            status = 429
        return html("login.html", status=status, error=exc.message)
    resp = web.Response(status=303, headers={"Location": "/inbox"})
    # a server-side session: the cookie is a new random id, never the credential itself
    await start_session(request, principal, resp)
    return resp


def setup(app: web.Application) -> None:
    """Register the workspace routes (HTML; not part of the OpenAPI document) and their CSRF guard."""
    app.middlewares.append(csrf.csrf_guard)  # inside the error mapping: a refusal is a JSON 403
    from bridge.web import note_pages  # imports this module (its error pages come home)

    add_get, add_post = app.router.add_get, app.router.add_post
    add_get("/inbox", inbox, name="inbox")
    add_get("/inbox/caseload", caseload, name="inbox_caseload")
    add_get("/inbox/my-notes", my_notes, name="inbox_my_notes")
    add_get("/inbox/queue", queue_page, name="inbox_queue")
    add_get("/inbox/referrals/{referral_id}", referral_page, name="inbox_referral_page")
    add_get("/inbox/sessions/new", new_session, name="inbox_new_session")
    add_get("/inbox/notes/new", note_pages.new_note, name="inbox_new_note")
    add_get("/inbox/notes/{note_ref}", note_pages.note_page, name="inbox_note_page")
    add_post("/inbox/login", login, name="inbox_login")
    add_post("/inbox/logout", signin.logout, name="inbox_logout")
    add_post("/inbox/referrals/{referral_id}/{action}", referral_action, name="inbox_referral")
    add_post("/inbox/encounters", submit_encounter, name="inbox_encounter")
    add_post("/inbox/notes", note_pages.submit_note, name="inbox_note")
    add_post("/inbox/notes/check", note_pages.check_note, name="inbox_note_check")
    add_post("/inbox/notes/{note_ref}/cosign", note_pages.cosign_note, name="inbox_cosign")
    add_post("/inbox/notes/{note_ref}/return", note_pages.return_note, name="inbox_return")
    add_post("/inbox/notes/{note_ref}/escalation", note_pages.record_escalation, name="inbox_escalation")
