"""Units of bridge/exchange/sending.py where a real server cannot be made to misbehave on cue:
a server that stores the patient reference other than as sent (the literal text
``Patient?identifier=…``, as Medplum's router did with a conditional reference) is caught by the
read-back of the first delivery. Mock transport: error mapping and read-back only."""

from __future__ import annotations

from typing import Any

import httpx

from bridge.clients import AsyncFhirClient
from bridge.exchange.sending import SendOutcome, Written, check_references

SENT = {
    "resourceType": "Bundle",
    "type": "transaction",
    "entry": [
        {
            "fullUrl": "urn:uuid:1",
            "resource": {"resourceType": "Encounter", "subject": {"reference": "Patient/p-1"}},
            "request": {"method": "POST", "url": "Encounter"},
        }
    ],
}


async def _check(stored_subject: str) -> bool:
    def handler(request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": "e-1",
            "subject": {"reference": stored_subject},
        }
        return httpx.Response(200, json=body)

    outcome = SendOutcome(written=[Written("Encounter", "e-1", 201)])
    async with AsyncFhirClient("http://ehr/fhir", transport=httpx.MockTransport(handler)) as ehr:
        return await check_references(ehr, SENT, outcome)


async def test_a_reference_kept_as_sent_passes() -> None:
    assert await _check("Patient/p-1")
    assert await _check("http://ehr/fhir/Patient/p-1")  # absolute at the same base: the same


async def test_a_reference_stored_as_text_is_caught() -> None:
    assert not await _check("Patient?identifier=urn:oid:1.2.3%7CMRN-1")
