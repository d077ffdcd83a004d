"""The Peer Bridge error tree.

Every failure the bridge can report is one of these. Lower-level exceptions (httpx, SQLAlchemy,
pydantic, TOML) are translated at the boundary with ``raise ... from exc`` and never leak. Only
``bridge.web`` turns them into HTTP answers and only ``bridge.cli`` turns them into exit codes.

    BridgeError
    ├── ConfigError                     config file or environment is wrong (names the key path)
    ├── InputError                      a peer-side record is invalid (names the field)
    │   └── MappingError                a record cannot be mapped to/from FHIR (names the field)
    ├── PolicyError                     the policy engine refused (carries the decision)
    │   ├── ScopeViolationError         note or action out of peer scope of practice
    │   └── ConsentRequiredError        42 CFR Part 2 disclosure without consent on file
    ├── RuleFileError                   a rule file is broken (names the file, key and reason)
    ├── StateTransitionError            a Task status change the SDOH CC state machine forbids
    ├── NotHeldError                    co-sign/escalation for a note that is not (or no longer) held
    ├── StoreError                      the outbox / inbox / audit store failed
    │   └── NotFoundInStoreError        no such submission, referral or outbox item
    ├── AccessError                     a caller of the bridge's own API was refused
    │   ├── NotAuthenticatedError       no, bad or expired credentials (HTTP 401)
    │   ├── TooManyFailuresError        too many failed sign-ins from one address (HTTP 429)
    │   └── ForbiddenError              authenticated, but not allowed (HTTP 403)
    │       ├── IdentityMismatchError   the directory does not know the caller as the token says
    │       ├── AuthorshipError         a record names someone else as its author
    │       └── CsrfError               a browser form without its token, or from another origin
    ├── IdempotencyConflictError        an Idempotency-Key reused for a different request
    ├── RecordIdTakenError              a record id that belongs to another author (HTTP 409)
    │   └── CosignedRecordError         an unsigned amendment of a co-signed note
    └── ExchangeError                   talking to an EHR failed
        ├── RetryableError              worth trying again later (same request, unchanged)
        │   ├── TransportError          connection refused/reset, DNS, TLS, timeout
        │   │   └── EndpointTimeoutError    no answer within the endpoint's timeout_seconds
        │   ├── ThrottledError          429 (``retry_after`` seconds when the server said)
        │   ├── ServerUnavailableError  502 / 503 / 504
        │   └── CircuitOpenError        our own breaker for that endpoint is open
        └── PermanentError              retrying the same request cannot succeed
            ├── FhirRequestError        4xx/5xx not listed above (``status``, ``outcome``)
            ├── AuthError               token refused, 401 after one refresh, 403 scope
            │   └── FhirAuthError       the 401/403 came from a FHIR answer (``status``, ``outcome``)
            ├── UnsupportedError        the endpoint's CapabilityStatement lacks the interaction
            └── InvalidResourceError    the server answered with a resource the R4 models reject

``FhirHttpError`` is a mixin carried by every error that came from an HTTP answer, so callers can
read ``status`` and ``outcome`` (the server's OperationOutcome as a dict) whichever branch it is on.
A retry predicate is one ``isinstance(exc, RetryableError)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose.

    ``code`` is stable and machine-readable (used in HTTP error bodies and logs); the message is
    for people and never contains PHI.
    """

    code: str = "bridge_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class ConfigError(BridgeError):
    """The configuration is invalid. ``path`` is the dotted key path, e.g. ``endpoints.epic.base_url``."""

    code = "config_invalid"

    def __init__(
        self, path: str, reason: str, *, source: str | None = None, more: Sequence[tuple[str, str]] = ()
    ) -> None:
        where = f"{source}: " if source else ""
        # every problem found, one line each (the first is ``path``/``reason``)
        self.problems = [(path, reason), *more]
        super().__init__("\n".join(f"{where}{p}: {r}" for p, r in self.problems))
        self.path = path
        self.reason = reason
        self.source = source


class InputError(BridgeError):
    """A peer-side record is invalid. ``field`` names the offending field (dotted path)."""

    code = "invalid_input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "field": self.field}


class MappingError(InputError):
    """A record cannot be mapped to or from FHIR; ``field`` names the field that blocked it."""

    code = "mapping_failed"


class PolicyError(BridgeError):
    """The policy engine refused. ``violations`` are dicts ``{rule, severity, message, evidence}``."""

    code = "policy_refused"

    def __init__(self, message: str, violations: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.violations = [dict(v) for v in violations]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "violations": self.violations}


class ScopeViolationError(PolicyError):
    code = "scope_violation"


class ConsentRequiredError(PolicyError):
    code = "consent_required"


class RuleFileError(BridgeError):
    """A rule file cannot be loaded: names the file, the key and the reason."""

    code = "rule_file_invalid"

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class StateTransitionError(BridgeError):
    """A Task status change not allowed by the SDOH Clinical Care state machine."""

    code = "invalid_transition"

    def __init__(self, current: str, requested: str, reason: str | None = None) -> None:
        why = f": {reason}" if reason else ""
        super().__init__(f"cannot move a referral from {current!r} to {requested!r}{why}")
        self.current = current
        self.requested = requested


class NotHeldError(BridgeError):
    """A co-sign or escalation names a note that exists but is not held (queued, sent, or resolved)."""

    code = "not_held"


class StoreError(BridgeError):
    code = "store_failed"


class NotFoundInStoreError(StoreError):
    code = "not_found"


class AccessError(BridgeError):
    """A caller of the bridge's own API was refused (never an EHR refusing us: that is AuthError)."""

    code = "access_denied"


class NotAuthenticatedError(AccessError):
    code = "unauthenticated"


class TooManyFailuresError(AccessError):
    """A source address that failed to authenticate too often lately (``retry_after`` seconds)."""

    code = "too_many_failures"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ForbiddenError(AccessError):
    """Authenticated but not allowed; ``rule`` names the policy rule that decided, when known."""

    code = "forbidden"

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if self.rule is not None:
            d["rule"] = self.rule
        return d


class IdentityMismatchError(ForbiddenError):
    """The token's practitioner is unknown to the directory, or listed with another role or
    organization than the token claims (``rule`` ``identity.*``)."""

    code = "identity_mismatch"


class AuthorshipError(ForbiddenError):
    """A session or note names an author the caller may not submit for (``rule`` ``authorship.*``)."""

    code = "authorship_mismatch"


class CsrfError(ForbiddenError):
    """A state-changing browser form without its form token, or posted from another origin."""

    code = "csrf_refused"


class RecordIdTakenError(BridgeError):
    """A session or note id already used by another author (or organization): nothing changes."""

    code = "record_id_taken"


class CosignedRecordError(RecordIdTakenError):
    """A note sent before with a co-signature, amended without one: it would replace the signed copy."""

    code = "record_cosigned"


class IdempotencyConflictError(BridgeError):
    """The same Idempotency-Key was sent with a different request, or while the first is running."""

    code = "idempotency_conflict"


class ExchangeError(BridgeError):
    """Talking to an EHR endpoint failed. ``endpoint`` is the configured endpoint name, if known."""

    code = "exchange_failed"

    def __init__(self, message: str, *, endpoint: str | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


class RetryableError(ExchangeError):
    code = "exchange_retryable"


class PermanentError(ExchangeError):
    code = "exchange_permanent"


class FhirHttpError(ExchangeError):
    """Mixin for errors that came from an HTTP answer: ``status`` and the ``outcome`` dict (if any)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        outcome: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status
        self.outcome = dict(outcome) if outcome is not None else None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["status"] = self.status
        if self.outcome is not None:
            d["outcome"] = self.outcome
        return d


class TransportError(RetryableError):
    code = "transport_failed"


class EndpointTimeoutError(TransportError):
    """The endpoint did not answer in time (a hung EHR): counted apart in the metrics."""


class ThrottledError(FhirHttpError, RetryableError):
    code = "throttled"

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        outcome: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, outcome=outcome, endpoint=endpoint)
        self.retry_after = retry_after


class ServerUnavailableError(FhirHttpError, RetryableError):
    code = "server_unavailable"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        outcome: Mapping[str, Any] | None = None,
        endpoint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, outcome=outcome, endpoint=endpoint)
        self.retry_after = retry_after


class CircuitOpenError(RetryableError):
    code = "circuit_open"


class FhirRequestError(FhirHttpError, PermanentError):
    code = "fhir_request_failed"


class AuthError(PermanentError):
    code = "auth_failed"

    def __init__(self, message: str, *, endpoint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status


class FhirAuthError(FhirHttpError, AuthError):
    """401/403 from a FHIR endpoint: on the auth branch, with ``status`` and the OperationOutcome."""

    code = "auth_failed"
    status: int  # always set here (AuthError's is optional)


class UnsupportedError(PermanentError):
    code = "unsupported_by_endpoint"


class InvalidResourceError(PermanentError):
    code = "invalid_resource"
