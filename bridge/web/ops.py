"""The operations page ``/ops`` for integrators (the ops role): server-rendered like ``/inbox``.

Per endpoint: status, circuit breaker, last success, backlog and its age, the referral
subscription, and the dead letters with their reasons, each with a retry button (a form: CSRF
token, audited as ``outbox.retry``). Operators sign in with their API key (or a token with the
integrator role), which starts a server-side session like the inbox's (``bridge.web.sessions``).
The page shows ids, states and error codes only: no PHI (see ``bridge.exchange.operations``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from bridge.errors import AccessError, BridgeError, NotAuthenticatedError, TooManyFailuresError
from bridge.web import csrf
from bridge.web.errors import status_for
from bridge.web.keys import EXCHANGE, SETTINGS
from bridge.web.page import html
from bridge.web.principal import Action, Principal, actor_for, has_required_scope
from bridge.web.requests import authorize, form_fields
from bridge.web.sessions import credential_principal, start_session

log = logging.getLogger("bridge.web.ops")


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = int((now - since).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{max(seconds, 0)} s"


async def _page(
    request: web.Request, principal: Principal, *, status: int = 200, error: str = ""
) -> web.Response:
    now = datetime.now(UTC)
    endpoints = await request.app[EXCHANGE].operations.endpoints()
    org = request.app[SETTINGS].organization.id
    can_retry = bool(
        has_required_scope(
            principal, Action.RETRY_OUTBOX, organization=org, permits=request.app[EXCHANGE].permits
        )
    )
    return html(
        "ops.html",
        status=status,
        principal=principal,
        csrf_token=csrf.page_token(request),
        endpoints=endpoints,
        age=lambda since: _age(since, now),
        can_retry=can_retry,
        message=request.query.get("msg", ""),
        error=error,
    )


async def ops(request: web.Request) -> web.Response:
    try:
        principal = authorize(request, Action.READ_OUTBOX)
    except NotAuthenticatedError:
        return html("ops_login.html", status=401, error=None)
    return await _page(request, principal)


async def login(request: web.Request) -> web.StreamResponse:
    form = await form_fields(request)
    try:
        principal = credential_principal(
            request,
            str(form.get("credential", "")),
            Action.READ_OUTBOX,
            "this account may not use the operations page",
        )
    except AccessError as exc:
        status = (
            401
            if isinstance(exc, NotAuthenticatedError)
            else 429
            if isinstance(exc, TooManyFailuresError)
            else 403
        )
        return html("ops_login.html", status=status, error=exc.message)
    resp = web.Response(status=303, headers={"Location": "/ops"})
    # a server-side session, like the inbox's: the cookie is a new random id, never the credential
    await start_session(request, principal, resp)
    return resp


async def retry(request: web.Request) -> web.StreamResponse:
    try:
        principal = authorize(request, Action.RETRY_OUTBOX)
    except NotAuthenticatedError:
        raise web.HTTPSeeOther("/ops") from None
    item_id = request.match_info["item_id"]
    try:
        await request.app[EXCHANGE].operations.retry_dead(item_id, actor=actor_for(principal))
    except BridgeError as exc:
        return await _page(request, principal, status=status_for(exc), error=f"{exc.message} ({exc.code})")
    log.info(
        "dead letter requeued from the operations page", extra={"submission_id": item_id, "event": "retry"}
    )
    raise web.HTTPSeeOther("/ops?" + urlencode({"msg": f"{item_id} is queued again."}))


def setup(app: web.Application) -> None:
    """The operations page's routes (HTML; not in the OpenAPI document). The inbox's CSRF guard
    covers ``/ops/...`` posts too."""
    app.router.add_get("/ops", ops, name="ops")
    app.router.add_post("/ops/login", login, name="ops_login")
    app.router.add_post("/ops/outbox/{item_id}/retry", retry, name="ops_retry")
