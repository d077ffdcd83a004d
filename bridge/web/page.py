"""What every workspace page shares: rendering (the layout's navigation with the queue's risk
badge, dates in the reader's zone), redirects, who may do what, the people a page names, and the
form helpers (what was typed, a ``datetime-local`` in the browser's zone)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bridge.domain import (
    Participant,
    Referral,
)
from bridge.errors import (
    BridgeError,
    InputError,
    NotAuthenticatedError,
)
from bridge.exchange.views import HeldNote
from bridge.web import csrf, pages
from bridge.web.handlers import authorize_supervision
from bridge.web.keys import EXCHANGE
from bridge.web.principal import Action, Principal, actor_for, has_required_scope
from bridge.web.requests import authorize

_OFFSET = re.compile(r"^[+\-]\d\d:\d\d$")


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("bridge.web", "templates"),  # package data, read via importlib
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def html(template: str, status: int = 200, **context: Any) -> web.Response:
    body = _env.get_template(template).render(**context)
    resp = web.Response(status=status, text=body, content_type="text/html")
    # the page shows PHI: never cache it, never frame it
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    return resp


def see_other(path: str, **query: str) -> web.HTTPSeeOther:
    q = {k: v for k, v in query.items() if v}
    return web.HTTPSeeOther(path + (f"?{urlencode(q)}" if q else ""))


def redirect_home(**query: str) -> web.HTTPSeeOther:
    return see_other("/inbox", **query)


def may(principal: Principal, request: web.Request, action: Action) -> bool:
    exchange = request.app[EXCHANGE]
    org = principal.organization
    return bool(has_required_scope(principal, action, organization=org, permits=exchange.permits))


def now_utc() -> datetime:
    return datetime.now(UTC)


async def peer_name(request: web.Request, peer_id: str | None) -> str:
    if not peer_id:
        return ""
    try:
        p = await request.app[EXCHANGE].directory.peer(peer_id)
    except InputError:
        return peer_id
    return f"{p.name.given} {p.name.family}"


async def find_participant(request: web.Request, participant_id: str) -> Participant | None:
    try:
        return await request.app[EXCHANGE].directory.participant(participant_id)
    except InputError:
        return None


def person_name(r: Referral) -> str:
    return f"{r.contact.name.given} {r.contact.name.family}" if r.contact else "Name not shared"


async def held_queue(request: web.Request, principal: Principal) -> list[HeldNote]:
    """The supervisor's queue: risk first, then oldest first."""
    if not may(principal, request, Action.COSIGN_NOTE):
        return []
    held = await request.app[EXCHANGE].supervision.list_held(actor=actor_for(principal))
    return sorted(held, key=lambda h: (not h.risk, h.held_since))


async def queue_people(request: web.Request, queue: list[HeldNote]) -> dict[str, str]:
    names: dict[str, str] = {}
    for h in queue:
        names[h.note.author_id] = await peer_name(request, h.note.author_id)
        p = await find_participant(request, h.note.participant_id)
        names[h.note.participant_id] = f"{p.name.given} {p.name.family}" if p else "Unknown participant"
    return names


async def render(
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
    now = now_utc()
    tz = pages.zone(request.cookies.get(pages.TZ_COOKIE))
    if queue is None:
        queue = await held_queue(request, principal)
    if "people" not in context:
        context["people"] = await queue_people(request, queue)
    exchange = request.app[EXCHANGE]

    def when(value: datetime | None) -> str:
        return pages.when_words(value, now, tz)

    def at(value: datetime | None) -> str:
        return pages.time_words(value, now, tz)

    return html(
        template,
        status=status,
        principal=principal,
        me=await peer_name(request, principal.practitioner_id) or principal.subject,
        csrf_token=csrf.page_token(request),
        title=title,
        message=request.query.get("msg", ""),
        error=error,
        queue=queue,
        queue_risk=sum(1 for h in queue if h.risk),
        can_cosign=may(principal, request, Action.COSIGN_NOTE),
        can_write=may(principal, request, Action.SUBMIT_NOTE),
        can_act=may(principal, request, Action.ACT_ON_REFERRAL),
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


def error_for(request: web.Request, exc: BridgeError) -> dict[str, Any]:
    return pages.plain_error(exc, request.app[EXCHANGE].policy.satisfied_by)


def require(request: web.Request, action: Action) -> Principal:
    try:
        return authorize(request, action)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/inbox") from None


async def require_supervision(request: web.Request, action: Action, audited: str) -> Principal:
    try:
        return await authorize_supervision(request, action, audited)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/inbox") from None


def submitted_ids(request: web.Request, sid: str) -> str:
    prior = [s for s in request.query.get("submitted", "").split(",") if s]
    return ",".join([*prior, sid][-20:])


def form_dict(form: MultiDictProxy[Any]) -> dict[str, Any]:
    return {k: str(form.get(k, "")) for k in form}


def aware(local: str, tz: str, field: str) -> str:
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
