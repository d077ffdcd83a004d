"""Paging through more than a thousand resources on the real sandbox EHR."""

from __future__ import annotations

import uuid
from typing import Any

from bridge.clients import AsyncFhirClient
from bridge_dev.sandbox import Sandbox

SYSTEM = "urn:uuid:5b8e1c9e-paging-tests"


def _bundle(tag: str, start: int, n: int) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": SYSTEM, "value": f"{tag}-{i}"}],
                    "meta": {"tag": [{"system": SYSTEM, "code": tag}]},
                },
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={SYSTEM}|{tag}-{i}",
                },
            }
            for i in range(start, start + n)
        ],
    }


async def test_pages_through_1200_resources(sandbox_ehr: Sandbox) -> None:
    tag = uuid.uuid4().hex
    async with AsyncFhirClient(sandbox_ehr.base_url) as ehr:
        for start in range(0, 1200, 400):
            result = await ehr.transaction(_bundle(tag, start, 400))
            assert {e.status for e in result.entries} == {201}
        pages = [p async for p in ehr.pages("Patient", {"_tag": f"{SYSTEM}|{tag}", "_count": "100"})]
        everything = await ehr.search_all("Patient", {"_tag": f"{SYSTEM}|{tag}", "_count": "250"})
    assert len(pages) == 12 and all(len(p.matches) == 100 for p in pages)
    assert pages[-1].next_url is None and pages[0].total == 1200
    ids = [r.id for p in pages for r in p.matches]
    assert len(set(ids)) == 1200
    assert {r.id for r in everything.matches} == set(ids) and everything.invalid == []


async def test_raw_pages_are_the_same_pages_as_json(sandbox_ehr: Sandbox) -> None:
    tag = uuid.uuid4().hex
    async with AsyncFhirClient(sandbox_ehr.base_url) as ehr:
        result = await ehr.transaction(_bundle(tag, 0, 250))
        assert {e.status for e in result.entries} == {201}
        params = {"_tag": f"{SYSTEM}|{tag}", "_count": "100"}
        pages = [p async for p in ehr.pages_raw("Patient", params)]
    assert [len(p.matches) for p in pages] == [100, 100, 50] and pages[-1].next_url is None
    assert all(isinstance(r, dict) and r["resourceType"] == "Patient" for p in pages for r in p.matches)
    assert len({r["id"] for p in pages for r in p.matches}) == 250
