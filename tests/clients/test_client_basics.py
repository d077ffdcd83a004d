"""AsyncFhirClient against the real sandbox EHR: read, vread, search, writes, bundles, capabilities."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fhir.resources.R4B.patient import Patient

from bridge.clients import AsyncFhirClient, is_idempotent_bundle
from bridge.errors import FhirRequestError, PermanentError
from bridge_dev.sandbox import Sandbox

SYSTEM = "urn:uuid:7d1c0a52-peer-bridge-tests"


def _patient(value: str, **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": value}], **extra}


@pytest.fixture
async def ehr(sandbox_ehr: Sandbox) -> AsyncIterator[AsyncFhirClient]:
    async with AsyncFhirClient(sandbox_ehr.base_url, name="sandbox") as client:
        yield client


async def test_conditional_create_creates_once_then_finds(ehr: AsyncFhirClient) -> None:
    key = uuid.uuid4().hex
    first = await ehr.create_if_none_exist(_patient(key), {"identifier": f"{SYSTEM}|{key}"})
    again = await ehr.create_if_none_exist(_patient(key), {"identifier": f"{SYSTEM}|{key}"})
    assert (first.status, first.created) == (201, True)
    assert (again.status, again.created) == (200, False)
    assert again.id == first.id and first.version_id == "1"
    assert isinstance(first.resource, Patient) and first.resource.id == first.id
    page = await ehr.search("Patient", {"identifier": f"{SYSTEM}|{key}"})
    assert [p.id for p in page.matches] == [first.id]


async def test_read_vread_and_versioned_update(ehr: AsyncFhirClient) -> None:
    created = await ehr.create(_patient(uuid.uuid4().hex, gender="female"))
    assert created.id and created.created
    updated = await ehr.update(_patient("x", id=created.id, gender="male"), if_match=created.version_id)
    assert updated.version_id == "2"
    now = await ehr.read("Patient", created.id)
    before = await ehr.vread("Patient", created.id, "1")
    assert isinstance(now, Patient) and (now.gender, before.gender) == ("male", "female")
    with pytest.raises(FhirRequestError) as stale:  # If-Match on an old version: refused, not overwritten
        await ehr.update(_patient("x", id=created.id, gender="other"), if_match="1")
    assert stale.value.status in (409, 412)
    assert (await ehr.read("Patient", created.id)).gender == "male"


async def test_read_missing_is_permanent_with_outcome(ehr: AsyncFhirClient) -> None:
    with pytest.raises(FhirRequestError) as err:
        await ehr.read("Patient", "no-such-" + uuid.uuid4().hex)
    assert err.value.status == 404
    assert err.value.outcome is not None and err.value.outcome["resourceType"] == "OperationOutcome"


async def test_conditional_create_with_several_matches_is_412(ehr: AsyncFhirClient) -> None:
    key = uuid.uuid4().hex
    await ehr.create(_patient(key))
    await ehr.create(_patient(key))
    with pytest.raises(FhirRequestError) as err:
        await ehr.create_if_none_exist(_patient(key), {"identifier": f"{SYSTEM}|{key}"})
    assert err.value.status == 412


async def test_include_results_are_kept_apart_from_matches(ehr: AsyncFhirClient) -> None:
    org = await ehr.create({"resourceType": "Organization", "name": "Harbor"})
    key = uuid.uuid4().hex
    for _ in range(2):
        await ehr.create(_patient(key, managingOrganization={"reference": f"Organization/{org.id}"}))
    page = await ehr.search("Patient", {"identifier": f"{SYSTEM}|{key}", "_include": "Patient:organization"})
    assert len(page.matches) == 2 and all(p.get_resource_type() == "Patient" for p in page.matches)
    assert [o.id for o in page.included] == [org.id]


async def test_transaction_of_conditional_creates_is_idempotent(ehr: AsyncFhirClient) -> None:
    key = uuid.uuid4().hex
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": _patient(key),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SYSTEM}|{key}"},
            }
        ],
    }
    assert is_idempotent_bundle(bundle)
    first = await ehr.transaction(bundle)
    second = await ehr.transaction(bundle)
    assert [e.status for e in first.entries] == [201]
    assert [e.status for e in second.entries] == [200]
    assert first.entries[0].id == second.entries[0].id
    assert (await ehr.search("Patient", {"identifier": f"{SYSTEM}|{key}"})).total == 1


async def test_batch_reports_each_entry(ehr: AsyncFhirClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/missing-{uuid.uuid4().hex}"}},
            {"resource": _patient(uuid.uuid4().hex), "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    assert not is_idempotent_bundle(bundle)
    result = await ehr.batch(bundle)
    assert [e.status for e in result.entries] == [404, 201]


def test_bundle_idempotency_table() -> None:
    def b(*requests: dict[str, str]) -> dict[str, Any]:
        return {"entry": [{"request": r} for r in requests]}

    assert is_idempotent_bundle(b({"method": "GET", "url": "Patient/1"}))
    assert is_idempotent_bundle(b({"method": "PUT", "url": "Task/1", "ifMatch": 'W/"3"'}))
    assert is_idempotent_bundle(b({"method": "PUT", "url": "Patient?identifier=a|b"}))
    assert not is_idempotent_bundle(b({"method": "PUT", "url": "Task/1"}))
    assert not is_idempotent_bundle(b({"method": "POST", "url": "Patient"}))
    assert not is_idempotent_bundle(b({"method": "DELETE", "url": "Patient/1"}))


async def test_capabilities_of_the_sandbox(ehr: AsyncFhirClient) -> None:
    caps = await ehr.capabilities()
    assert caps.fhir_r4 and caps.supports_transaction
    assert caps.can_create("Encounter") and caps.can_conditional_create("DocumentReference")
    assert caps.supports_if_match("Task") and caps.subscriptions_backport
    assert await ehr.capabilities() is caps  # cached


async def test_next_link_outside_base_is_refused(ehr: AsyncFhirClient) -> None:
    with pytest.raises(PermanentError, match="outside the base URL"):
        await ehr.read_raw("http://127.0.0.1:1/elsewhere/Patient")
