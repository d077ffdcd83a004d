"""The whole demo story, in-process: every step through the bridge's API against the sandbox EHR.

Also the PHI check of the issue: the bridge's logs for the whole story must not contain the
participant's or peers' names nor any note text the story used.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class

from bridge.observability import configure_logging
from bridge_dev.demo import STORY_TEXTS, run_demo


@pytest.fixture
def captured_logs() -> io.StringIO:
    buf = io.StringIO()
    handler = configure_logging(logging.DEBUG, buf)
    yield buf
    logging.getLogger("bridge").removeHandler(handler)
    logging.getLogger().removeHandler(handler)


async def test_demo_story_end_to_end(tmp_path: Path, captured_logs: io.StringIO) -> None:
    out = io.StringIO()
    export = tmp_path / "export"
    result = await run_demo(out=out, export=export, workdir=tmp_path / "work")
    story = out.getvalue()

    # the closed loop happened at the EHR
    assert result.task_status == "completed"
    for kind in ("Encounter", "Procedure", "DocumentReference", "Provenance"):
        assert result.fhir_ids[kind].startswith(f"{kind}/"), result.fhir_ids
        assert result.fhir_ids[kind] in story  # printed with its FHIR id
    assert {"content.diagnostic-language", "content.medication-change"} <= set(result.blocked_rules)
    assert "422 scope_violation" in story and "held until a supervisor co-signs" in story
    assert "202 held" in story and "co-signed: 202 queued, same tracking id" in story
    # how each account signs in, and the supervisor's part played from a sign-in at the provider
    for kind in ("peer", "provisional", "supervisor", "integrator"):
        assert re.search(rf"^  {kind}@harbor-recovery +password \S+ ", story, re.MULTILINE), kind
    assert "signed in as supervisor@harbor-recovery at the OpenID provider" in story

    # the export: one NDJSON file per type, every line a valid R4(B) resource of that type
    files = sorted(p.name for p in export.glob("*.ndjson"))
    for rtype in ("Encounter", "Procedure", "DocumentReference", "Provenance", "Task", "ServiceRequest"):
        assert f"{rtype}.ndjson" in files
    for file in export.glob("*.ndjson"):
        rtype = file.stem
        lines = [json.loads(line) for line in file.read_text().splitlines() if line]
        assert len(lines) == result.exported[rtype]
        for resource in lines:
            assert resource["resourceType"] == rtype
            get_fhir_model_class(rtype).model_validate(resource)

    # structured logs, with request ids, and no PHI anywhere in them
    logs = captured_logs.getvalue()
    records = [json.loads(line) for line in logs.splitlines()]
    assert any(r.get("route") == "/api/v1/notes" and r.get("request_id") for r in records)
    for text in STORY_TEXTS:
        assert text not in logs, f"PHI in the bridge's logs: {text[:20]}..."
    for word in ("Marisol", "buprenorphine", "housing application"):
        assert word not in logs
    # an operator following the logs sees each delivery and each incoming referral (issue 14:
    # info level, ids only), and each action on a referral
    events = {(r.get("logger"), r.get("event")) for r in records if r["level"] == "info"}
    assert ("bridge.exchange.outbound", "delivered") in events
    assert ("bridge.exchange.inbound", "received") in events
    assert ("bridge.exchange.referrals", "accept") in events


async def test_demo_story_on_medplum(tmp_path: Path, captured_logs: io.StringIO) -> None:
    """``bridge demo --ehr medplum``: the same story on a server without subscriptions, with UUID
    versions and a minimal CapabilityStatement; the referral arrives by a ping and a poll."""
    out = io.StringIO()
    export = tmp_path / "export"
    result = await run_demo(out=out, export=export, workdir=tmp_path / "work", ehr_kind="medplum")
    story = out.getvalue()
    assert result.task_status == "completed"
    assert "pinged the bridge: POST /fhir/notify (empty) answered 200" in story
    for kind in ("Encounter", "Procedure", "DocumentReference", "Provenance"):
        assert result.fhir_ids[kind].startswith(f"{kind}/"), result.fhir_ids
    for file in export.glob("*.ndjson"):
        for line in file.read_text().splitlines():
            resource = json.loads(line)
            get_fhir_model_class(file.stem).model_validate(resource)
    logs = captured_logs.getvalue()
    for text in STORY_TEXTS:
        assert text not in logs, f"PHI in the bridge's logs: {text[:20]}..."
