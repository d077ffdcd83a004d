"""DS4P labels, the §2.32 notice, and the note text the treatment team reads."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bridge.domain import Audience, ContactMethod, NoteKind
from bridge.mappers import PART2_NOTICE, build_submission_bundle, labels_for, note_to_document_reference
from bridge.mappers.codes import ACTIVITY, NOTE_KIND

from . import samples as s

LABEL_CODES = ["R", "SUD", "42CFRPart2", "NORDSCLCD"]

# audience, sud_related -> label codes, notice? (issue 12: a Part 2-labelled care-team note carried
# no redisclosure notice in its text)
LABELS: list[tuple[Audience, bool, list[str], bool]] = [
    (Audience.CARE_TEAM, True, LABEL_CODES, True),
    (Audience.RESTRICTED, True, LABEL_CODES, True),
    (Audience.CARE_TEAM, False, [], False),
    (Audience.RESTRICTED, False, [], True),
    (Audience.PEER_TEAM, True, [], False),
]


@pytest.mark.parametrize(("audience", "sud", "codes", "notice"), LABELS)
def test_labels_for(audience: Audience, sud: bool, codes: list[str], notice: bool) -> None:
    note = s.note(audience=audience, sud_related=sud)
    assert [c["code"] for c in labels_for(note)] == codes


@pytest.mark.parametrize(
    ("audience", "sud", "codes", "notice"), [c for c in LABELS if c[0] is not Audience.PEER_TEAM]
)
def test_every_clinical_entry_carries_the_labels(
    audience: Audience, sud: bool, codes: list[str], notice: bool
) -> None:
    bundle = build_submission_bundle(
        s.ctx(),
        encounter=s.encounter(),
        participant=s.participant(),
        peer=s.peer(),
        note=s.note(audience=audience, sud_related=sud),
    )
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    for rtype in ("Encounter", "Procedure", "DocumentReference", "Provenance"):
        assert [c["code"] for c in by_type[rtype]["meta"].get("security", [])] == codes, rtype
    for rtype in ("Organization", "Practitioner"):
        assert "security" not in by_type[rtype]["meta"]
    doc = by_type["DocumentReference"]
    assert [sl["coding"][0]["code"] for sl in doc.get("securityLabel", [])] == codes
    text = _text(doc)
    assert text.startswith(PART2_NOTICE) is notice
    assert (PART2_NOTICE in doc["text"]["div"]) is notice  # the narrative a clinician reads first
    assert doc["description"] == doc["content"][0]["attachment"]["title"] != "Peer support progress note"


def _text(doc: dict[str, Any]) -> str:
    return base64.b64decode(doc["content"][0]["attachment"]["data"]).decode("utf-8")


def test_note_text_carries_the_billable_fields_and_signatures() -> None:
    doc = note_to_document_reference(
        s.ctx(),
        s.cosigned_note(text="Über café — ✓"),
        peer=s.peer(),
        encounter=s.encounter(
            method=ContactMethod.PHONE,
        ),
        cosigner=s.supervisor(),
    )
    assert _text(doc) == (
        PART2_NOTICE + "\n\n"
        "Über café — ✓\n\n"
        "Session: Thursday 26 November 2026, 14:00:00 (UTC-06:00) to 14:50:00, 50 minutes, "
        "Harbor drop-in center, individual, telephone\n"
        "Summary of activities: Recovery coaching; linked to the housing program.\n"
        "Recovery-plan goal: Stable housing by spring\n"
        "Progress toward the goal: Application submitted\n"
        "Signed: Jordan Reyes, PRSS, Thursday 26 November 2026, 15:10:00 (UTC-06:00)\n"
        "Co-signed: Morgan Lee, CPRS, Thursday 26 November 2026, 16:00:00 (UTC-06:00)\n"
    )
    assert doc["docStatus"] == "final"
    assert doc["authenticator"]["display"] == "Morgan Lee, CPRS"


@pytest.mark.parametrize(
    ("cosigned", "required", "expected"),
    [(False, True, "preliminary"), (True, True, "final"), (False, False, "final")],
)
def test_doc_status(cosigned: bool, required: bool, expected: str) -> None:
    note = s.cosigned_note() if cosigned else s.note()
    doc = note_to_document_reference(
        s.ctx(),
        note,
        peer=s.peer(),
        encounter=s.encounter(),
        cosigner=s.supervisor() if cosigned else None,
        cosign_required=required,
    )
    assert doc["docStatus"] == expected


def test_non_billable_session_needs_no_goal() -> None:
    doc = note_to_document_reference(
        s.ctx(),
        s.note(goal=None, progress=None, summary=None),
        peer=s.peer(),
        encounter=s.encounter(billable=False),
    )
    assert "Recovery-plan goal" not in _text(doc)


def test_code_tables_cover_every_enum_value() -> None:
    from bridge.domain import Activity

    assert set(ACTIVITY) == set(Activity)
    assert set(NOTE_KIND) == set(NoteKind)
