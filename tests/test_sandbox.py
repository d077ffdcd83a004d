from __future__ import annotations

import httpx

from bridge_dev.sandbox import Sandbox


def test_sandbox_ehr_answers_metadata(sandbox_ehr: Sandbox) -> None:
    r = httpx.get(f"{sandbox_ehr.base_url}/metadata")
    assert r.status_code == 200
    assert r.json()["fhirVersion"] == "4.0.1"
