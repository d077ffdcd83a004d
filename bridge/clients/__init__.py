"""Async FHIR R4 client for the bridge's EHR endpoints (issue 4). Knows FHIR and HTTP, not peers.

Public API (stable; the exchange layer builds on it)::

    from bridge.clients import AsyncFhirClient

    async with AsyncFhirClient.from_settings("clinic", settings.endpoints["clinic"],
                                             base_dir=Path(settings.base_dir)) as ehr:
        caps = await ehr.capabilities()              # EndpointCapabilities (cached)
        caps.can_create("Encounter")                 # False -> carry the period on the note
        [f for f in caps.findings() if f.level != "ok"]   # what is not sent, and why, in plain words
        r = await ehr.create_if_none_exist(resource, {"identifier": "sys|value"})
        r.created, r.id, r.version_id               # WriteResult; created False = already there
        await ehr.update(task, if_match=r.version_id)   # 412 FhirRequestError on a version conflict
        #   (a resend that meets its own lost, committed first attempt is recognised, not a 412)
        res = await ehr.transaction(bundle)          # BundleResult: entries[i].status/id/version_id
        page = await ehr.search("Task", {"owner": "Organization/x", "_include": "Task:focus"})
        page.matches, page.included, page.invalid, page.next_url
        async for page in ehr.pages("Task", {...}): ...   # follows next inside the base URL only
        everything = await ehr.search_all("Task", {...})  # all pages merged
        async for raw in ehr.pages_raw("Task", {...}): ...  # the same pages as plain JSON
        await ehr.read("Patient", "123"); await ehr.vread("Patient", "123", "2")
        ehr.status()                                 # ClientStatus: breaker state, in flight, retries

Errors are from :mod:`bridge.errors`: ``isinstance(exc, RetryableError)`` means try later (429,
502/503/504, transport failure, our circuit open); ``PermanentError`` does not (``FhirRequestError``
with ``status`` and ``outcome``, ``AuthError``/``FhirAuthError``, ``InvalidResourceError``).

Retries (``RetryPolicy``): only idempotent requests (GET, update with If-Match, conditional create,
transactions whose entries are all conditional), exponential backoff with jitter, ``Retry-After``
honored, total time capped by ``retry_max_seconds``. ``create`` (unconditional) is resent only if the
connection was never made.

Modules: ``fhir`` (the client), ``auth`` (none / bearer / SMART Backend Services), ``retry``,
``limits`` (rate limiter, circuit breaker), ``status`` (HTTP status -> error, in one function),
``capabilities`` (pure summary of CapabilityStatement + SMART configuration), ``probe`` and
``check`` (the ``bridge check`` command).
"""

from __future__ import annotations

from bridge.clients.auth import BearerAuth, SmartBackendAuth, auth_from_settings
from bridge.clients.capabilities import EndpointCapabilities, Finding, ResourceSupport, SmartSupport
from bridge.clients.fhir import (
    AsyncFhirClient,
    BundleResult,
    ClientStatus,
    EntryResult,
    InvalidEntry,
    RawPage,
    SearchPage,
    WriteResult,
    is_idempotent_bundle,
    parse_resource,
)
from bridge.clients.limits import BreakerStatus, CircuitBreaker, RateLimiter
from bridge.clients.retry import RetryPolicy
from bridge.clients.status import error_for_response, error_for_transport, parse_retry_after

__all__ = [
    "AsyncFhirClient",
    "BearerAuth",
    "BreakerStatus",
    "BundleResult",
    "CircuitBreaker",
    "ClientStatus",
    "EndpointCapabilities",
    "EntryResult",
    "Finding",
    "InvalidEntry",
    "RateLimiter",
    "RawPage",
    "ResourceSupport",
    "RetryPolicy",
    "SearchPage",
    "SmartBackendAuth",
    "SmartSupport",
    "WriteResult",
    "auth_from_settings",
    "error_for_response",
    "error_for_transport",
    "is_idempotent_bundle",
    "parse_resource",
    "parse_retry_after",
]
