"""A chart people can read (issue 12): every resource written has a plain-words narrative, every
reference a display, times to the second in the session's offset, note titles that say what the
note is, and the referral Task's narrative says where it stands."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bridge.domain import ReferralStatus
from bridge.mappers import build_submission_bundle, referral_to_fhir, task_with_status
from bridge.mappers.narrative import XHTML

from . import samples as s


def _refs(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        own = [value] if "reference" in value else []
        return own + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _full() -> dict[str, Any]:
    return build_submission_bundle(
        s.ctx(),
        encounter=s.encounter(referral_id="ref-1"),
        participant=s.participant(),
        peer=s.peer(),
        note=s.cosigned_note(),
        cosigner=s.supervisor(),
        referral=s.referral(requester_ref="Practitioner/dr-patel"),
        notify_requester=True,
    )


def test_every_resource_has_a_narrative_and_every_reference_a_display() -> None:
    bundle = _full()
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Communication" in types
    for entry in bundle["entry"]:
        text = entry["resource"]["text"]
        assert text["status"] == "generated" and text["div"].startswith(f'<div xmlns="{XHTML}"><p>')
        for ref in _refs(entry["resource"]):
            assert ref.get("display"), (entry["resource"]["resourceType"], ref["reference"])
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    session = by_type["Encounter"]["text"]["div"]
    for words in ("Avery Quinn", "Jordan Reyes, PRSS", "50 minutes", "Recovery coaching", "Dr. Sam Patel"):
        assert words in session
    note = by_type["DocumentReference"]["text"]["div"]
    for words in ("Recovery-plan goal", "Progress toward the goal", "Co-signed by Morgan Lee, CPRS"):
        assert words in note


def test_times_are_to_the_second_in_the_sessions_offset() -> None:
    written = datetime(2026, 11, 26, 21, 10, 7, 123456, tzinfo=UTC)  # 15:10:07 at the session (UTC-6)
    bundle = build_submission_bundle(
        s.ctx(),
        encounter=s.encounter(),
        participant=s.participant(),
        peer=s.peer(),
        note=s.note(written_at=written),
    )
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    doc = by_type["DocumentReference"]
    assert doc["date"] == doc["content"][0]["attachment"]["creation"] == "2026-11-26T15:10:07-06:00"
    assert by_type["Provenance"]["recorded"] == "2026-11-26T15:10:07-06:00"
    assert "15:10:07 (UTC-06:00)" in doc["text"]["div"]


def test_a_note_title_says_what_the_note_is() -> None:
    doc = next(
        e["resource"] for e in _full()["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    )
    title = doc["content"][0]["attachment"]["title"]
    assert title == "Peer support progress note: recovery coaching, resource navigation and linkage, 50 min"
    assert doc["description"] == title


def test_the_task_narrative_follows_each_step() -> None:
    _, task = referral_to_fhir(s.referral(), owner_ref="Organization/org-peer")
    accepted = task_with_status(task, ReferralStatus.ACCEPTED, now=s.NOW)
    assert "accepted by the peer organization (Accepted)" in accepted["text"]["div"]
    done = task_with_status(accepted, ReferralStatus.COMPLETED, now=s.NOW, outputs=["Procedure/p-1"])
    assert "completed (Fulfillment Completed)" in done["text"]["div"]
    assert "Services delivered: Procedure/p-1" in done["text"]["div"]
    # a narrative the clinic wrote itself is theirs: left alone
    own = {**task, "text": {"status": "additional", "div": f'<div xmlns="{XHTML}">Call first</div>'}}
    assert task_with_status(own, ReferralStatus.ACCEPTED, now=s.NOW)["text"] == own["text"]
