"""Domain errors -> HTTP answers. The only place that knows both.

Every error answer is JSON ``{code, message, request_id, ...}`` (``field`` for bad input,
``violations`` for scope refusals, ``rule`` for access decisions). Client input never produces a 5xx,
and no answer carries a traceback or exception text we did not write.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from bridge.errors import (
    AccessError,
    BridgeError,
    ConfigError,
    ExchangeError,
    ForbiddenError,
    IdempotencyConflictError,
    InputError,
    NotAuthenticatedError,
    NotFoundInStoreError,
    NotHeldError,
    PermanentError,
    PolicyError,
    RecordIdTakenError,
    RetryableError,
    RuleFileError,
    StateTransitionError,
    StoreError,
    TooManyFailuresError,
)

log = logging.getLogger("bridge.web")

# most specific first; the first isinstance match decides the status
STATUS_BY_ERROR: tuple[tuple[type[BridgeError], int], ...] = (
    (NotAuthenticatedError, 401),
    (TooManyFailuresError, 429),
    (ForbiddenError, 403),
    (AccessError, 403),
    (IdempotencyConflictError, 409),
    (RecordIdTakenError, 409),
    (PolicyError, 422),  # scope violation, consent required: the reasons are in the body
    (InputError, 422),  # includes MappingError
    (StateTransitionError, 409),
    (NotHeldError, 409),  # co-sign/escalation of a note that is queued, sent or already resolved
    (NotFoundInStoreError, 404),
    (StoreError, 503),
    (RetryableError, 503),  # the EHR is busy or down: try later
    (PermanentError, 502),
    (ExchangeError, 502),
    (ConfigError, 500),
    (RuleFileError, 500),
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}


def status_for(exc: BridgeError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


def json_error(status: int, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, default=str).encode(),
        content_type="application/json",
        headers=headers,
    )


def bridge_error_response(exc: BridgeError, request_id: str | None) -> web.Response:
    status = status_for(exc)
    body = {**exc.to_dict(), "request_id": request_id}
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthenticatedError):
        headers["WWW-Authenticate"] = 'Bearer realm="peer-bridge"'
    retry_after = getattr(exc, "retry_after", None)
    if status == 429 and isinstance(retry_after, int):
        headers["Retry-After"] = str(retry_after)
    if status == 503:
        headers["Retry-After"] = str(int(retry_after) if isinstance(retry_after, (int, float)) else 30)
    if status >= 500:
        log.warning(
            "request failed", extra={"code": exc.code, "status": status, "error_type": type(exc).__name__}
        )
    return json_error(status, body, headers=headers or None)


def http_exception_response(exc: web.HTTPException, request_id: str | None) -> web.Response:
    code = getattr(exc, "code", None) or HTTP_CODES.get(exc.status, f"http_{exc.status}")
    message = exc.reason or code
    headers = {}
    if exc.status == 405 and "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    body = {"code": code, "message": message, "request_id": request_id}
    return json_error(exc.status, body, headers=headers)


def internal_error_response(request_id: str | None) -> web.Response:
    body = {"code": "internal_error", "message": "internal error; quote the request id"}
    body["request_id"] = request_id or ""
    return json_error(500, body)
