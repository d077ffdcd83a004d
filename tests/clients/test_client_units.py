"""Pure parts: status mapping (httpx.MockTransport), Retry-After, capabilities, rate limiter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bridge.clients import (
    AsyncFhirClient,
    EndpointCapabilities,
    RateLimiter,
    RetryPolicy,
    error_for_response,
    parse_retry_after,
)
from bridge.errors import (
    FhirAuthError,
    FhirRequestError,
    InvalidResourceError,
    PermanentError,
    RetryableError,
    ServerUnavailableError,
    ThrottledError,
)

NOW = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, FhirRequestError, False),
        (401, FhirAuthError, False),
        (403, FhirAuthError, False),
        (404, FhirRequestError, False),
        (409, FhirRequestError, False),
        (412, FhirRequestError, False),
        (422, FhirRequestError, False),
        (429, ThrottledError, True),
        (500, FhirRequestError, False),
        (502, ServerUnavailableError, True),
        (503, ServerUnavailableError, True),
        (504, ServerUnavailableError, True),
    ],
)
def test_status_mapping(status: int, kind: type[Exception], retryable: bool) -> None:
    request = httpx.Request("GET", "http://ehr/fhir/Patient?name=Alice")
    err = error_for_response(
        httpx.Response(status, json=OUTCOME, request=request), endpoint="clinic", now=NOW
    )
    assert type(err) is kind
    assert isinstance(err, RetryableError) is retryable and isinstance(err, PermanentError) is not retryable
    assert err.status == status and err.outcome == OUTCOME and err.endpoint == "clinic"
    assert "Alice" not in err.message  # the query string (search values) stays out of messages


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("Sun, 08 Mar 2026 06:32:00 GMT", 120.0),
        ("Sun, 08 Mar 2026 06:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


async def test_errors_carry_the_outcome_through_the_client() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json=OUTCOME)

    async with AsyncFhirClient("http://ehr/fhir", transport=httpx.MockTransport(handler)) as ehr:
        with pytest.raises(FhirRequestError) as err:
            await ehr.create({"resourceType": "Patient"})
    assert err.value.status == 422 and err.value.to_dict()["outcome"] == OUTCOME


async def test_non_json_answer_is_invalid_resource_not_a_crash() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>login</html>"))
    async with AsyncFhirClient("http://ehr/fhir", transport=transport) as ehr:
        with pytest.raises(InvalidResourceError, match="not JSON"):
            await ehr.read("Patient", "1")


def test_wait_is_at_least_retry_after_and_otherwise_jittered_backoff() -> None:
    from tenacity import RetryCallState

    policy = RetryPolicy(initial_wait=1.0, max_wait=8.0)

    def state(exc: BaseException, attempt: int) -> RetryCallState:
        s = RetryCallState(retry_object=policy.retrying(idempotent=True), fn=None, args=(), kwargs={})
        s.attempt_number = attempt
        s.set_exception((type(exc), exc, None))
        return s

    throttled = ThrottledError("x", retry_after=5.0)
    assert all(policy.wait_seconds(state(throttled, 1)) == 5.0 for _ in range(20))
    busy = ServerUnavailableError("x", status=503)
    waits = [policy.wait_seconds(state(busy, 4)) for _ in range(50)]
    assert all(0 <= w <= 8.0 for w in waits) and len(set(waits)) > 1  # jitter


def test_only_idempotent_requests_are_retried() -> None:
    policy = RetryPolicy()
    busy = ServerUnavailableError("x", status=503)
    assert policy.should_retry(busy, idempotent=True)
    assert not policy.should_retry(busy, idempotent=False)
    assert not policy.should_retry(FhirRequestError("x", status=400), idempotent=True)


async def test_rate_limiter_spaces_requests() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(2.0, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await limiter.acquire()
    assert waits == [0.5, 0.5]


# --- capabilities ----------------------------------------------------------------------------------


def _statement(
    resources: dict[str, dict[str, Any]], system: tuple[str, ...] = ("transaction",)
) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "fhirVersion": "4.0.1",
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": c} for c in system],
                "resource": [
                    {
                        "type": t,
                        "interaction": [{"code": c} for c in spec.get("i", ())],
                        "conditionalCreate": spec.get("cc", False),
                        "versioning": spec.get("v", "versioned"),
                    }
                    for t, spec in resources.items()
                ],
            }
        ],
    }


FULL = {
    "DocumentReference": {"i": ("create", "read"), "cc": True},
    "Encounter": {"i": ("create",), "cc": True},
    "Procedure": {"i": ("create",), "cc": True},
    "Provenance": {"i": ("create",)},
    "Task": {"i": ("read", "search-type", "update"), "v": "versioned-update"},
    "ServiceRequest": {"i": ("read",)},
}


def _levels(caps: EndpointCapabilities) -> dict[str, str]:
    return {f.name: f.level for f in caps.findings()}


def test_everything_supported_is_ok_but_polling() -> None:
    caps = EndpointCapabilities.from_documents(_statement(FULL))
    levels = _levels(caps)
    assert levels.pop("referral-notifications") == "warn"
    assert set(levels.values()) == {"ok"}


def test_no_encounter_create_is_a_warn_that_says_the_period_goes_on_the_note() -> None:
    caps = EndpointCapabilities.from_documents(_statement({**FULL, "Encounter": {"i": ("read",)}}))
    assert not caps.can_create("Encounter") and caps.can_create("DocumentReference")
    finding = next(f for f in caps.findings() if f.name == "write-sessions")
    assert finding.level == "warn" and "period" in finding.reason


def test_no_document_reference_create_is_a_fail() -> None:
    caps = EndpointCapabilities.from_documents(_statement({**FULL, "DocumentReference": {"i": ("read",)}}))
    assert _levels(caps)["write-notes"] == "fail"


@pytest.mark.parametrize(
    ("change", "name", "words"),
    [
        ({"Encounter": {"i": ("create",)}}, "no-duplicates", "conditional create for Encounter"),
        ({"Task": {"i": ("read", "search-type", "update")}}, "update-referrals", "If-Match"),
        ({"Task": {"i": ("read", "search-type")}}, "update-referrals", "cannot be written back"),
        ({"Task": {"i": ("read",)}}, "receive-referrals", "Task search"),
    ],
)
def test_workarounds_are_warns_with_reasons(change: dict[str, Any], name: str, words: str) -> None:
    caps = EndpointCapabilities.from_documents(_statement({**FULL, **change}))
    finding = next(f for f in caps.findings() if f.name == name)
    assert finding.level == "warn" and words in finding.reason


def test_no_transaction_and_polling_interval_are_said() -> None:
    caps = EndpointCapabilities.from_documents(_statement(FULL, system=("batch",)))
    findings = {f.name: f for f in caps.findings(poll_interval_seconds=900)}
    assert findings["transaction"].level == "warn" and not caps.supports_transaction
    assert "ordered conditional writes" in findings["transaction"].reason
    assert "every 15 minutes" in findings["referral-notifications"].reason


MINIMAL = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": [{"mode": "server"}]}


def test_what_the_statement_does_not_list_is_unknown_not_absent() -> None:
    """Issue 12 (1): a statement listing no resources read as 'supports nothing'; the session
    then went out as Organization + Practitioner only, and was called delivered."""
    caps = EndpointCapabilities.from_documents(MINIMAL)
    assert caps.support("Encounter", "create") == "unknown"
    assert caps.can_create("Encounter") and caps.can_create("Procedure") and caps.supports_transaction
    assert caps.can_search("Task") and caps.can_update("Task") and caps.supports_if_match("Task")
    findings = {f.name: f for f in caps.findings()}
    assert not any(f.level == "fail" for f in findings.values())
    for name in ("write-notes", "write-sessions", "transaction", "receive-referrals", "update-referrals"):
        assert "assumed" in findings[name].reason, name
    # a listed statement still says no where it says no
    listed = EndpointCapabilities.from_documents(_statement({**FULL, "Encounter": {"i": ("read",)}}))
    assert listed.support("Encounter", "create") == "no" and not listed.can_create("Encounter")


def test_refusals_and_probes_are_learned() -> None:
    caps = EndpointCapabilities.from_documents(MINIMAL)
    caps = caps.learn("Encounter", "create", False, "the server answered 405")
    caps = caps.learn("Task", "search-type", True, "probed: Task?_summary=count answered")
    assert not caps.can_create("Encounter") and caps.support("Task", "search-type") == "yes"
    findings = {f.name: f for f in caps.findings()}
    assert findings["write-sessions"].level == "warn" and "405" in findings["write-sessions"].reason
    assert findings["receive-referrals"].level == "ok" and "probed" in findings["receive-referrals"].reason


def test_subscription_topic_for_tasks_and_smart_configuration() -> None:
    statement = _statement(
        {
            **FULL,
            "Subscription": {"i": ("create",)},
        }
    )
    sub = statement["rest"][0]["resource"][-1]
    sub["supportedProfile"] = [
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
    ]
    sub["extension"] = [
        {
            "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
            "capabilitystatement-subscriptiontopic-canonical",
            "valueCanonical": "http://clinic.example.org/topics/task-owner",
        }
    ]
    smart = {"token_endpoint": "https://ehr/token", "grant_types_supported": ["client_credentials"]}
    caps = EndpointCapabilities.from_documents(statement, smart)
    assert caps.subscriptions_backport and caps.task_topic == "http://clinic.example.org/topics/task-owner"
    assert _levels(caps)["referral-notifications"] == "ok"
    assert caps.smart is not None and caps.smart.backend_services


def test_not_a_capability_statement() -> None:
    with pytest.raises(InvalidResourceError):
        EndpointCapabilities.from_documents({"resourceType": "OperationOutcome"})


async def test_from_settings_wires_the_endpoint_settings() -> None:
    from bridge.config import EndpointSettings

    endpoint = EndpointSettings.model_validate(
        {
            "base_url": "https://ehr.example.org/fhir/",
            "max_concurrency": 3,
            "rate_limit_per_second": 5,
            "retry_max_seconds": 42,
            "breaker_failures": 2,
            "breaker_reset_seconds": 7,
        }
    )
    async with AsyncFhirClient.from_settings("clinic", endpoint) as ehr:
        assert (ehr.name, ehr.base_url, ehr.max_concurrency) == ("clinic", "https://ehr.example.org/fhir", 3)
        assert ehr.retry.max_seconds == 42 and ehr.auth is None
        assert (ehr.breaker.failures, ehr.breaker.reset_seconds) == (2, 7)
        assert ehr._limiter is not None and ehr._limiter.rate == 5
        assert ehr.status().breaker.state == "closed"


def test_breaker_half_open_admits_one_trial_and_a_cancelled_trial_frees_it() -> None:
    from bridge.clients import CircuitBreaker
    from bridge.errors import CircuitOpenError

    now = [0.0]
    breaker = CircuitBreaker(failures=1, reset_seconds=10, clock=lambda: now[0])
    breaker.record_failure()
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    now[0] = 10
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpenError, match="trial call is in flight"):
        breaker.before_call()
    breaker.release_trial()
    breaker.before_call()  # a new trial may go
    breaker.record_success()
    assert breaker.status().state == "closed"


async def test_transaction_versions_from_the_returned_resources() -> None:
    """Issue 12: a server that gives the version only in ``entry.resource.meta.versionId`` (no
    etag, an unversioned location) left the bridge without version ids."""
    answer = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {
                "response": {"status": "201", "location": "Encounter/e-1"},
                "resource": {
                    "resourceType": "Encounter",
                    "id": "e-1",
                    "meta": {"versionId": "0a0e6084-uuid"},
                },
            }
        ],
    }
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=answer))
    async with AsyncFhirClient("http://ehr/fhir", transport=transport) as ehr:
        result = await ehr.transaction({"resourceType": "Bundle", "type": "transaction", "entry": []})
    assert result.entries[0].version_id == "0a0e6084-uuid" and result.entries[0].id == "e-1"


async def test_endpoint_headers_go_with_every_request() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("prefer"))
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})

    async with AsyncFhirClient(
        "http://ehr/fhir", transport=httpx.MockTransport(handler), headers={"Prefer": "handling=strict"}
    ) as ehr:
        await ehr.search("Task", {"_summary": "count"})
    assert seen == ["handling=strict"]
