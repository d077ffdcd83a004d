"""HTTP answers and transport failures -> the bridge's error tree, in one place.

``error_for_response`` is the only function that maps a status code to an error type (as fhirpy's
``_do_request`` does); ``error_for_transport`` translates httpx's exceptions. Both keep the server's
OperationOutcome (``outcome``) and never put a resource body into the message: only the status, the
request line without query string, and the OperationOutcome's issue severities and codes (no
diagnostics: servers echo identifiers there, and the message reaches the audit log and the API).

Retryable: 429, 502, 503, 504, connection errors, timeouts. Permanent: everything else, with 401/403
as :class:`~bridge.errors.AuthError` (the auth layer refreshes its token once before a 401 gets here).
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.errors import (
    EndpointTimeoutError,
    ExchangeError,
    FhirAuthError,
    FhirHttpError,
    FhirRequestError,
    ServerUnavailableError,
    ThrottledError,
    TransportError,
)

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 10.2.3).

    ``now`` is passed in (no clock reads here). A date in the past means 0; garbage means None.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_of(response: httpx.Response) -> dict[str, Any] | None:
    """The OperationOutcome in an error answer, if the server sent one (else None)."""
    try:
        body = json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return body
    return None


# FHIR issue codes and severities are lower-case tokens; anything else a server puts there is
# free text and stays out of the message like the diagnostics do
_TOKEN = re.compile(r"^[a-z][a-z-]{0,31}$")


def outcome_summary(outcome: Mapping[str, Any] | None) -> str:
    """`` (error not-found; warning processing)``: each issue's severity and code, at most three.

    Never the diagnostics, details or expression: servers echo what they were sent there
    (identifiers, search values), and this text reaches the audit log and the API. The full
    OperationOutcome is kept on the error (``outcome``) and on the outbox item for operators."""
    if not outcome:
        return ""
    issues = outcome.get("issue")
    parts = []
    for issue in issues[:3] if isinstance(issues, list) else []:
        if not isinstance(issue, Mapping):
            continue
        words = [str(issue.get(k, "")) for k in ("severity", "code")]
        parts.append(" ".join(w if _TOKEN.match(w) else "?" for w in words))
    return f" ({'; '.join(parts)})" if parts else ""


def request_line(request: httpx.Request) -> str:
    """``METHOD path`` without the query string (search values may identify a patient)."""
    return f"{request.method} {request.url.path}"


def error_for_response(
    response: httpx.Response, *, endpoint: str | None = None, now: datetime | None = None
) -> FhirHttpError:
    """The typed error for a non-2xx FHIR answer. ``now`` resolves an HTTP-date ``Retry-After``."""
    status = response.status_code
    outcome = outcome_of(response)
    where = f"{endpoint}: " if endpoint else ""
    msg = f"{where}{request_line(response.request)} answered {status}{outcome_summary(outcome)}"
    retry_after = parse_retry_after(response.headers.get("retry-after"), now or datetime.now(UTC))
    if status == 429:
        return ThrottledError(msg, status=status, outcome=outcome, endpoint=endpoint, retry_after=retry_after)
    if status in (502, 503, 504):
        return ServerUnavailableError(
            msg, status=status, outcome=outcome, endpoint=endpoint, retry_after=retry_after
        )
    if status in (401, 403):
        return FhirAuthError(msg, status=status, outcome=outcome, endpoint=endpoint)
    return FhirRequestError(msg, status=status, outcome=outcome, endpoint=endpoint)


def error_for_transport(
    exc: httpx.HTTPError, request: httpx.Request | None = None, *, endpoint: str | None = None
) -> ExchangeError:
    """Translate an httpx exception (no answer came back) to the bridge's error tree."""
    where = f"{endpoint}: " if endpoint else ""
    line = request_line(request) if request is not None else "request"
    # the exception's class says what went wrong (ConnectError, ReadTimeout, RemoteProtocolError ...);
    # its text can echo the URL with its query string, so it stays out of the message
    message = f"{where}{line} failed: {type(exc).__name__}"
    if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.PoolTimeout):
        return EndpointTimeoutError(message, endpoint=endpoint)
    return TransportError(message, endpoint=endpoint)


def never_sent(exc: BaseException) -> bool:
    """True when the request certainly never reached the server (safe to resend even a plain create)."""
    cause = exc.__cause__ if isinstance(exc, ExchangeError) else exc
    return isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


REFUSED_STATUSES = frozenset({405, 501})


def refusal(exc: BaseException) -> str | None:
    """Why the server refuses an interaction *for good*, or None when the failure is of another
    kind: 405 / 501, an OperationOutcome ``not-supported``, or a 403 (from a FHIR answer: a scope
    the EHR did not grant for that resource type; a failed sign-in is a 401)."""
    if not isinstance(exc, FhirHttpError):
        return None
    codes = {
        str(i.get("code"))
        for i in (exc.outcome or {}).get("issue") or []
        if isinstance(i, Mapping) and i.get("severity") in ("error", "fatal")
    }
    if exc.status in REFUSED_STATUSES:
        return f"the server answered {exc.status}{outcome_summary(exc.outcome)}"
    if exc.status == 403:
        return f"the server answered 403{outcome_summary(exc.outcome)}: a scope the EHR did not grant"
    if "not-supported" in codes and exc.status in (400, 404, 422):
        return f"the server answered {exc.status} (not-supported)"
    return None
