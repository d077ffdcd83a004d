"""Per-request helpers: who is calling, the parsed body, access checks."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import BaseModel

from bridge.domain import parse
from bridge.errors import ForbiddenError, NotAuthenticatedError
from bridge.web.keys import AUTH_THROTTLE, AUTHENTICATOR, EXCHANGE, PRINCIPAL, SETTINGS
from bridge.web.principal import Action, Principal, has_required_scope

M = TypeVar("M", bound=BaseModel)

SESSION_COOKIE = "bridge_session"
# Browser calls that ride on the session cookie must carry this header: a cross-site form cannot set
# it, which (with SameSite=Strict) keeps the cookie from being used for request forgery.
CSRF_HEADER = "X-Bridge-Inbox"


class MalformedBody(web.HTTPBadRequest):
    """400 for a body that is not JSON (or not a JSON object)."""

    code = "malformed_json"


def authenticate(request: web.Request, *, allow_cookie: bool) -> Principal:
    cached: Principal | None = request.get(PRINCIPAL)
    if cached is not None:
        return cached
    auth = request.app[AUTHENTICATOR]
    authorization = request.headers.get("Authorization")
    api_key = request.headers.get("X-API-Key")
    if authorization is None and api_key is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and not (allow_cookie or request.headers.get(CSRF_HEADER) == "1"):
            raise NotAuthenticatedError(f"API calls with the session cookie need the {CSRF_HEADER} header")
        if cookie:
            # a live session was put on the request by the session middleware (bridge.web.sessions)
            raise NotAuthenticatedError("the session has ended: sign in again")
    throttle = request.app[AUTH_THROTTLE]
    source = request.remote or "unknown"
    throttle.check(source)
    try:
        principal = auth.authenticate(authorization, api_key)
    except NotAuthenticatedError as exc:
        throttle.failed(source, "api_key" if api_key is not None else "bearer", exc)
        raise
    request[PRINCIPAL] = principal
    return principal


def authorize(request: web.Request, action: Action, *, organization: str | None = None) -> Principal:
    """Authenticate and check ``action`` against ``organization`` (default: the bridge's own)."""
    principal = authenticate(request, allow_cookie=request.path.startswith(("/inbox", "/ops")))
    org = organization if organization is not None else request.app[SETTINGS].organization.id
    decision = has_required_scope(principal, action, organization=org, permits=request.app[EXCHANGE].permits)
    if not decision.allowed:
        raise ForbiddenError(decision.reason, rule=decision.rule)
    return principal


async def json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise MalformedBody(reason="request body is not valid JSON") from None
    except LookupError:  # Content-Type names a charset Python does not know: was a 500
        raise MalformedBody(reason="request body has an unknown charset") from None
    except RecursionError:  # nested deeper than the parser recurses (well under the size limit): was a 500
        raise MalformedBody(reason="request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedBody(reason="request body must be a JSON object")
    return data


class MalformedForm(web.HTTPBadRequest):
    """400 for a form post that cannot be read (unknown charset, broken multipart framing)."""

    code = "malformed_form"


async def form_fields(request: web.Request) -> MultiDictProxy[Any]:
    """The posted form fields; a body that cannot be decoded is a 400, not a 500."""
    try:
        return await request.post()
    except (ValueError, LookupError):  # broken multipart boundary, or a charset Python does not know
        raise MalformedForm(reason="form body cannot be read") from None


async def body(request: web.Request, model: type[M]) -> M:
    """Parse the JSON body as ``model``; bad JSON is 400, a bad field 422 naming the field."""
    return parse(model, await json_object(request))
