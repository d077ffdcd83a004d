"""Request ids, access logs and metrics (outermost), then the error mapping (innermost)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from bridge.errors import BridgeError
from bridge.observability import request_id_var
from bridge.web.errors import bridge_error_response, http_exception_response, internal_error_response
from bridge.web.keys import METRICS, REQUEST_ID

log = logging.getLogger("bridge.web")
access_log = logging.getLogger("bridge.web.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def _route(request: web.Request) -> str:
    # the route template, not the path: ids in paths would explode metric label cardinality
    info = request.match_info.route.resource
    return info.canonical if info is not None else "(unmatched)"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Request-Id", "")
    rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
    request[REQUEST_ID] = rid
    token = request_id_var.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:  # raised by the router (404/405) past the error middleware
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = _route(request)
        metrics = request.app[METRICS]
        metrics.http_requests.labels(method=request.method, route=route, status=str(status)).inc()
        metrics.http_seconds.labels(method=request.method, route=route).observe(elapsed)
        # the path holds ids only (no names, no text); query strings are never logged
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "route": route,
                "path": request.path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        request_id_var.reset(token)


# ids in paths are at most 64 characters (the route table's patterns): longer is malformed, not unknown
MAX_PATH_ID = 64


class MalformedId(web.HTTPBadRequest):
    code = "malformed_id"


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid: str | None = request.get(REQUEST_ID)
    try:
        if any(len(v) > MAX_PATH_ID for v in request.match_info.values()):
            raise MalformedId(reason=f"an id in the path is longer than {MAX_PATH_ID} characters")
        return await handler(request)
    except BridgeError as exc:
        return bridge_error_response(exc, rid)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects are answers, not errors
            raise
        return http_exception_response(exc, rid)
    except Exception:
        log.exception("unhandled error", extra={"route": _route(request)})
        return internal_error_response(rid)
