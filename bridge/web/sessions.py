"""Browser sessions: a random id in an HttpOnly cookie, the session itself in the store.

A request that carries the session cookie (and no credential header of its own) on an ``/inbox`` or ``/ops``
page, or on an API call with ``X-Bridge-Inbox: 1``, is the session's person: the middleware looks
the id up (``bridge.store.sessions``) before the handler runs, so ``requests.authenticate`` finds
the principal ready. An unknown, expired or idle session is simply no principal: the page offers
sign-in again. Sign-in always issues a new id and deletes the browser's previous session (no
fixation); sign-out deletes the row, so a copied cookie is worth nothing afterwards.

The cookie is ``SameSite=Strict`` (a cross-site form cannot send it), ``Secure`` when the browser
reaches the bridge over TLS (``server.public_url``, or a trusted proxy's ``X-Forwarded-Proto``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web

from bridge.domain import Role
from bridge.errors import AccessError, NotAuthenticatedError
from bridge.store.sessions import SessionRecord, new_secret
from bridge.web.keys import AUTH_THROTTLE, AUTHENTICATOR, EXCHANGE, PRINCIPAL, SETTINGS
from bridge.web.principal import Action, Principal, has_required_scope
from bridge.web.requests import CSRF_HEADER, SESSION_COOKIE

# without an [identity_provider] section (the token form): the same limits as the defaults there
DEFAULT_SESSION = timedelta(hours=12)
DEFAULT_IDLE = timedelta(minutes=30)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def lifetimes(request: web.Request) -> tuple[timedelta, timedelta]:
    """(absolute lifetime, idle timeout) of a session."""
    idp = request.app[SETTINGS].identity_provider
    if idp is None:
        return DEFAULT_SESSION, DEFAULT_IDLE
    return timedelta(hours=idp.session_hours), timedelta(minutes=idp.idle_minutes)


def https(request: web.Request) -> bool:
    """Whether the browser reached us over TLS: directly, by the configured public URL, or by a
    proxy's ``X-Forwarded-Proto`` when the integrator said that header can be trusted."""
    server = request.app[SETTINGS].server
    if request.secure or (server.public_url or "").startswith("https://"):
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return server.trust_forwarded_proto and forwarded == "https"


def _record(principal: Principal) -> SessionRecord:
    return SessionRecord(
        subject=principal.subject,
        role=principal.role.value,
        organization=principal.organization,
        practitioner_id=principal.practitioner_id,
        via=principal.via,
    )


def _principal(record: SessionRecord) -> Principal:
    return Principal(
        subject=record.subject,
        role=Role(record.role),
        organization=record.organization,
        practitioner_id=record.practitioner_id,
        via=record.via,
    )


def credential_principal(request: web.Request, credential: str, action: Action, refusal: str) -> Principal:
    """Who a pasted credential (an access token or a service API key) is, for a sign-in form
    (the inbox's token form without an identity provider, the operations page): checked like an API
    call, throttled like one, and refused (``AccessError``, with ``refusal``) when the account may
    not ``action``. The caller then starts a server-side session: the cookie never holds it."""
    credential = credential.strip()
    kind = "jwt" if credential.count(".") == 2 else "key"
    throttle, source = request.app[AUTH_THROTTLE], request.remote or "unknown"
    throttle.check(source)  # a guessing page is slowed down like a guessing API client
    auth = request.app[AUTHENTICATOR]
    try:
        principal = (
            auth.authenticate(f"Bearer {credential}", None)
            if kind == "jwt"
            else auth.authenticate(None, credential)
        )
    except NotAuthenticatedError as exc:
        throttle.failed(source, "bearer" if kind == "jwt" else "api_key", exc)
        raise
    org = request.app[SETTINGS].organization.id
    if not has_required_scope(principal, action, organization=org, permits=request.app[EXCHANGE].permits):
        raise AccessError(refusal)
    return principal


async def start_session(request: web.Request, principal: Principal, response: web.StreamResponse) -> None:
    """Store a new session for ``principal`` and set its cookie on ``response``. The browser's
    previous session (if any) is deleted: the id always changes at sign-in."""
    now = datetime.now(UTC)
    lifetime, _ = lifetimes(request)
    session_id = new_secret()
    await request.app[EXCHANGE].store.sessions.create(
        session_id,
        _record(principal),
        now=now,
        expires_at=now + lifetime,
        replaces=request.cookies.get(SESSION_COOKIE) or None,
    )
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="Strict",
        path="/",
        max_age=int(lifetime.total_seconds()),
        secure=https(request),
    )


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    """Delete the browser's session (row and cookie)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await request.app[EXCHANGE].store.sessions.delete(session_id)
    response.del_cookie(SESSION_COOKIE, path="/")


def _rides_on_cookie(request: web.Request) -> bool:
    if request.headers.get("Authorization") is not None or request.headers.get("X-API-Key") is not None:
        return False  # a credential of its own: the cookie is not used
    return request.path.startswith(("/inbox", "/ops")) or request.headers.get(CSRF_HEADER) == "1"


@web.middleware
async def session_principal(request: web.Request, handler: Handler) -> web.StreamResponse:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id and _rides_on_cookie(request):
        _, idle = lifetimes(request)
        record = await request.app[EXCHANGE].store.sessions.get(session_id, now=datetime.now(UTC), idle=idle)
        if record is not None:
            request[PRINCIPAL] = _principal(record)
    return await handler(request)
