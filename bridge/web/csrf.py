"""Cross-site request forgery guard for the inbox page's forms (issue 10).

SameSite=Strict alone did not stop a page on another port of the same host (same site, other
origin), nor login CSRF. Every POST to ``/inbox/...`` and ``/ops/...`` (the operations page):

1. when the browser says where it comes from (``Origin``, else ``Referer``), that must be this
   bridge (the request's own origin, or ``server.public_url`` behind a proxy);
2. when it rides on the session cookie (no credential header of its own), it carries the form
   token: an HMAC keyed by the session id (the cookie), which a page of another origin cannot read
   and so cannot forge. The page puts it in every form (:func:`form_token`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from bridge.errors import CsrfError
from bridge.web.keys import SETTINGS
from bridge.web.requests import SESSION_COOKIE, form_fields

FIELD = "csrf_token"
_PURPOSE = b"peer-bridge inbox form"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def form_token(session_cookie: str) -> str:
    """The form token of a session (keyed by the cookie: the random session id)."""
    return hmac.new(session_cookie.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def page_token(request: web.Request) -> str:
    """The token the page puts in its forms ("" when not signed in with the cookie)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return form_token(cookie) if cookie else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def check_origin(request: web.Request) -> None:
    """Refuse a POST a browser says comes from another origin."""
    own = {f"{request.scheme}://{request.host}".lower()}
    public = request.app[SETTINGS].server.public_url
    if public:
        own.add(_origin(public))
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin.lower() not in own:  # "null" (sandboxed frames, privacy redirects) included
            raise CsrfError("the form was posted from another origin", rule="csrf.origin")
        return
    referer = request.headers.get("Referer")
    if referer is not None and _origin(referer) not in own:
        raise CsrfError("the form was posted from another origin", rule="csrf.referer")


def check_token(request: web.Request, presented: str) -> None:
    """A form riding on the session cookie carries that session's token."""
    if request.headers.get("Authorization") is not None or request.headers.get("X-API-Key") is not None:
        return  # a credential a cross-site form cannot send: the cookie is not used
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return  # no ambient credential to ride on: the handler sends the caller to sign in
    if not hmac.compare_digest(presented.encode(errors="replace"), form_token(cookie).encode()):
        raise CsrfError("the form token is missing or wrong: reload the page", rule="csrf.token")


@web.middleware
async def csrf_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST" and request.path.startswith(("/inbox/", "/ops/")):
        check_origin(request)
        # signing in has no session yet: the origin check guards it
        if request.path not in ("/inbox/login", "/ops/login"):
            form = await form_fields(request)  # read once: aiohttp keeps it for the handler
            check_token(request, str(form.get(FIELD, "")))
    return await handler(request)
