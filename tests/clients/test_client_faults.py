"""Retries, idempotency and good citizenship, through the loopback fault proxy to the real sandbox EHR.

No test measures time: waits are recorded by an injected ``sleep``, and the breaker runs on a fake clock.
"""

from __future__ import annotations

import email.utils
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faultproxy import Fault, FaultProxy, on

from bridge.clients import AsyncFhirClient, CircuitBreaker, RetryPolicy
from bridge.errors import (
    CircuitOpenError,
    FhirAuthError,
    FhirRequestError,
    PermanentError,
    ServerUnavailableError,
    ThrottledError,
    TransportError,
)

SYSTEM = "urn:uuid:3f0e2d7a-fault-tests"


class Sleeps:
    """Records the waits the retry policy asks for instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _patient(key: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": key}]}


def _query(key: str) -> dict[str, str]:
    return {"identifier": f"{SYSTEM}|{key}"}


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


async def _count(proxy: FaultProxy, key: str) -> int:
    async with AsyncFhirClient(proxy.upstream_root + "/fhir") as direct:
        page = await direct.search("Patient", _query(key))
        return len(page.matches)


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_seconds_is_honored(proxy: FaultProxy, sleeps: Sleeps, status: int) -> None:
    proxy.plan(Fault.answer(status, Retry_After="2"))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        caps = await ehr.capability_statement()
    assert caps["resourceType"] == "CapabilityStatement"
    assert sleeps.waits == [2.0]  # backoff alone would be under 0.5 s
    assert [s.fault for s in proxy.seen] == ["status", "forwarded"]


async def test_429_retry_after_http_date_is_honored(proxy: FaultProxy, sleeps: Sleeps) -> None:
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    proxy.plan(Fault.answer(429, Retry_After=when))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        await ehr.capability_statement()
    assert len(sleeps.waits) == 1 and 25 <= sleeps.waits[0] <= 30


async def test_retry_after_beyond_the_budget_goes_back_to_the_caller(
    proxy: FaultProxy, sleeps: Sleeps
) -> None:
    proxy.plan(Fault.answer(429, Retry_After="600"))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(max_seconds=60, sleep=sleeps)) as ehr:
        with pytest.raises(ThrottledError) as err:
            await ehr.capability_statement()
    assert err.value.retry_after == 600 and err.value.outcome is not None
    assert sleeps.waits == [] and proxy.count() == 1


async def test_503_burst_then_conditional_create_lands_once(proxy: FaultProxy, sleeps: Sleeps) -> None:
    key = uuid.uuid4().hex
    proxy.plan(*[Fault.answer(503, match=on("POST")) for _ in range(3)])
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(initial_wait=0.5, sleep=sleeps)) as ehr:
        result = await ehr.create_if_none_exist(_patient(key), _query(key))
        assert ehr.status().retries == 3
    assert result.created and proxy.count("POST") == 4
    # exponential with equal jitter: each wait within its doubling ceiling
    assert len(sleeps.waits) == 3
    assert all(0 <= w <= 0.5 * 2**i for i, w in enumerate(sleeps.waits))
    assert await _count(proxy, key) == 1


async def test_503_burst_longer_than_attempts_gives_up_typed(proxy: FaultProxy, sleeps: Sleeps) -> None:
    proxy.plan(*[Fault.answer(503) for _ in range(5)])
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(max_attempts=3, sleep=sleeps)) as ehr:
        with pytest.raises(ServerUnavailableError) as err:
            await ehr.read("Patient", "whatever")
    assert err.value.status == 503 and proxy.count() == 3


async def test_connection_reset_is_retried_for_conditional_create(proxy: FaultProxy, sleeps: Sleeps) -> None:
    key = uuid.uuid4().hex
    proxy.plan(Fault("reset", match=on("POST")))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        result = await ehr.create_if_none_exist(_patient(key), _query(key))
    assert result.created and len(sleeps.waits) == 1
    assert await _count(proxy, key) == 1


async def test_answer_lost_after_commit_never_duplicates_conditional_create(
    proxy: FaultProxy, sleeps: Sleeps
) -> None:
    key = uuid.uuid4().hex
    proxy.plan(Fault("lost", match=on("POST")), Fault("lost", match=on("POST")))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        result = await ehr.create_if_none_exist(_patient(key), _query(key))
    # the first attempt created it; the retries found it
    assert (result.status, result.created) == (200, False)
    assert proxy.count("POST") == 3
    assert await _count(proxy, key) == 1


async def test_answer_lost_after_commit_never_duplicates_a_conditional_transaction(
    proxy: FaultProxy, sleeps: Sleeps
) -> None:
    key = uuid.uuid4().hex
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _patient(key),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SYSTEM}|{key}"},
            }
        ],
    }
    proxy.plan(Fault("lost", match=on("POST")))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        result = await ehr.transaction(bundle)
    assert [e.status for e in result.entries] == [200]
    assert await _count(proxy, key) == 1


async def test_plain_create_is_not_resent_after_a_lost_answer(proxy: FaultProxy, sleeps: Sleeps) -> None:
    key = uuid.uuid4().hex
    proxy.plan(Fault("lost", match=on("POST")))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        with pytest.raises(TransportError):
            await ehr.create(_patient(key))
    # it did land: resending would have made two
    assert proxy.count("POST") == 1 and sleeps.waits == []
    assert await _count(proxy, key) == 1


async def test_plain_create_is_resent_when_the_connection_was_never_made(sleeps: Sleeps) -> None:
    from bridge_dev.sandbox import free_port

    async with AsyncFhirClient(
        f"http://127.0.0.1:{free_port()}/fhir", retry=RetryPolicy(max_attempts=3, sleep=sleeps)
    ) as ehr:
        with pytest.raises(TransportError, match="ConnectError"):
            await ehr.create(_patient("never-sent"))
    assert len(sleeps.waits) == 2  # refused connections were retried: nothing reached a server


async def test_slow_answer_times_out_and_the_retry_succeeds(proxy: FaultProxy, sleeps: Sleeps) -> None:
    proxy.plan(Fault("slow", delay=2.0, match=on("GET", "/metadata")))
    async with AsyncFhirClient(proxy.base_url, timeout=0.3, retry=RetryPolicy(sleep=sleeps)) as ehr:
        caps = await ehr.capability_statement()
    assert caps["resourceType"] == "CapabilityStatement"
    assert [s.fault for s in proxy.seen] == ["slow", "forwarded"] and len(sleeps.waits) == 1


async def test_permanent_errors_are_not_retried(proxy: FaultProxy, sleeps: Sleeps) -> None:
    for status in (400, 403, 404, 409, 412, 422):
        proxy.plan(Fault.answer(status))
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        for status in (400, 403, 404, 409, 412, 422):
            expected = FhirAuthError if status == 403 else FhirRequestError
            with pytest.raises(expected) as err:
                await ehr.read("Patient", "x")
            assert err.value.status == status and isinstance(err.value, PermanentError)
    assert proxy.count() == 6 and sleeps.waits == []


async def test_circuit_opens_refuses_then_half_opens_and_closes(proxy: FaultProxy, sleeps: Sleeps) -> None:
    now = [1000.0]
    breaker = CircuitBreaker(failures=3, reset_seconds=30, endpoint="faulty", clock=lambda: now[0])
    proxy.plan(*[Fault.answer(503) for _ in range(4)])
    async with AsyncFhirClient(
        proxy.base_url, name="faulty", breaker=breaker, retry=RetryPolicy(max_attempts=1, sleep=sleeps)
    ) as ehr:
        for _ in range(3):
            with pytest.raises(ServerUnavailableError):
                await ehr.capability_statement()
        assert ehr.status().breaker.state == "open"
        with pytest.raises(CircuitOpenError, match="circuit open"):
            await ehr.capability_statement()
        assert proxy.count() == 3  # refused without touching the server
        now[0] += 30
        assert breaker.state == "half-open"
        with pytest.raises(ServerUnavailableError):  # the trial call fails: open again
            await ehr.capability_statement()
        assert breaker.state == "open" and breaker.opens_total == 2
        now[0] += 30
        await ehr.capability_statement()  # trial succeeds
        assert breaker.status().state == "closed" and breaker.status().consecutive_failures == 0


async def test_concurrency_is_capped_per_endpoint(proxy: FaultProxy) -> None:
    import asyncio

    for _ in range(6):
        proxy.plan(Fault("slow", delay=0.2))
    async with AsyncFhirClient(proxy.base_url, max_concurrency=2) as ehr:
        await asyncio.gather(*(ehr.capability_statement() for _ in range(6)))
    assert proxy.count() == 6 and proxy.max_in_flight <= 2


async def test_resource_the_models_reject_is_reported_not_crashed_on(proxy: FaultProxy) -> None:
    key = uuid.uuid4().hex

    def corrupt_first(bundle: dict[str, Any]) -> dict[str, Any]:
        if bundle.get("resourceType") == "Bundle" and bundle.get("entry"):
            bundle["entry"][0]["resource"]["birthDate"] = "31/12/1970"
        elif bundle.get("resourceType") == "Patient":
            bundle["birthDate"] = "31/12/1970"
        return bundle

    async with AsyncFhirClient(proxy.base_url) as ehr:
        first = await ehr.create(_patient(key))
        second = await ehr.create(_patient(key))
        proxy.rewrite(on("GET", "/Patient"), corrupt_first)
        page = await ehr.search("Patient", {**_query(key), "_sort": "_lastUpdated"})
        assert [p.id for p in page.matches] == [second.id]
        assert [(e.resource_type, e.id) for e in page.invalid] == [("Patient", first.id)]
        assert "birthDate" in page.invalid[0].reason and "1970" not in page.invalid[0].reason
        from bridge.errors import InvalidResourceError

        with pytest.raises(InvalidResourceError, match="birthDate"):
            await ehr.read("Patient", str(first.id))


async def test_write_answer_the_models_reject_keeps_id_and_reports_on_access(proxy: FaultProxy) -> None:
    from bridge.errors import InvalidResourceError

    def corrupt(resource: dict[str, Any]) -> dict[str, Any]:
        return {**resource, "birthDate": "31/12/1970"}

    proxy.rewrite(on("POST", "/fhir/Patient"), corrupt)
    key = uuid.uuid4().hex
    async with AsyncFhirClient(proxy.base_url) as ehr:
        result = await ehr.create_if_none_exist(_patient(key), _query(key))
    assert result.created and result.id and result.version_id == "1"
    with pytest.raises(InvalidResourceError, match="birthDate"):
        _ = result.resource


async def test_versioned_update_whose_answer_was_lost_is_recognised_not_a_conflict(
    proxy: FaultProxy, sleeps: Sleeps
) -> None:
    async with AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=sleeps)) as ehr:
        created = await ehr.create(_patient(uuid.uuid4().hex))
        proxy.plan(Fault("lost", match=on("PUT")))
        changed = {**_patient("x"), "id": created.id, "gender": "female"}
        result = await ehr.update(changed, if_match=created.version_id)
        assert result.version_id == "2" and proxy.count("PUT") == 2  # the resend met a 412


async def test_versioned_update_meeting_someone_elses_change_on_retry_stays_a_conflict(
    proxy: FaultProxy,
) -> None:
    direct = AsyncFhirClient(proxy.upstream_root + "/fhir")
    patient_id: list[str] = []

    async def clinic_edits_while_we_wait(seconds: float) -> None:
        # between our attempts, the clinic changes the same resource
        await direct.update({**_patient("x"), "id": patient_id[0], "gender": "other"}, if_match="1")

    async with (
        direct,
        AsyncFhirClient(proxy.base_url, retry=RetryPolicy(sleep=clinic_edits_while_we_wait)) as ehr,
    ):
        created = await ehr.create(_patient(uuid.uuid4().hex))
        patient_id.append(str(created.id))
        proxy.plan(Fault("reset", match=on("PUT")))
        with pytest.raises(FhirRequestError) as err:
            await ehr.update({**_patient("x"), "id": created.id, "gender": "female"}, if_match="1")
        assert err.value.status in (409, 412)
        assert (await ehr.read("Patient", str(created.id))).gender == "other"
