from __future__ import annotations

from typing import Any

import pytest

from bridge.domain import ConsentRecord, PeerEncounter, PeerNote, parse
from bridge.errors import InputError

ENCOUNTER: dict[str, Any] = {
    "id": "enc-1",
    "participant_id": "p-1",
    "peer_id": "peer-1",
    "start": "2026-03-08T09:30:00-06:00",
    "end": "2026-03-08T10:15:00-06:00",
    "setting": "community",
    "location_name": "Harbor drop-in center",
    "activities": ["recovery-coaching"],
}


def test_valid_encounter_parses_and_counts_minutes() -> None:
    enc = parse(PeerEncounter, ENCOUNTER)
    assert enc.minutes == 45


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end": "2026-03-08T09:00:00-06:00"}, "end"),
        ({"start": "2026-03-08T09:30:00"}, "start"),  # naive datetime
        ({"activities": ["diagnosis"]}, "activities.0"),
        ({"activities": []}, "activities"),
        ({"modality": "group"}, "group_size"),
        ({"group_size": 4}, "group_size"),
        ({"id": "has space"}, "id"),
        ({"setting": "moon"}, "setting"),
        ({"unknown": 1}, "unknown"),
        ({"location_name": None}, "location_name"),
    ],
)
def test_bad_encounter_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        parse(PeerEncounter, {**ENCOUNTER, **change})
    assert info.value.field == field


def test_missing_field_is_named() -> None:
    data = dict(ENCOUNTER)
    del data["location_name"]
    with pytest.raises(InputError) as info:
        parse(PeerEncounter, data)
    assert info.value.field == "location_name"


def test_malformed_identifier_is_refused() -> None:
    with pytest.raises(InputError) as info:
        parse(
            __import__("bridge.domain", fromlist=["Participant"]).Participant,
            {
                "id": "p-1",
                "name": {"given": "Ana", "family": "Diaz"},
                "identifiers": {"clinic": {"system": "not a uri", "value": "123"}},
            },
        )
    assert info.value.field == "identifiers.clinic.system"


def test_cosign_fields_go_together() -> None:
    with pytest.raises(InputError) as info:
        parse(
            PeerNote,
            {
                "id": "n-1",
                "participant_id": "p-1",
                "author_id": "peer-1",
                "audience": "care-team",
                "text": "Met at the center.",
                "written_at": "2026-03-08T11:00:00-06:00",
                "cosigner_id": "sup-1",
            },
        )
    assert info.value.field == "cosigned_at"


@pytest.mark.parametrize(
    ("recipient", "at", "expected"),
    [
        ("clinic", "2026-03-08T12:00:00+00:00", True),
        ("other", "2026-03-08T12:00:00+00:00", False),
        ("clinic", "2025-12-31T23:59:59+00:00", False),  # before start
        ("clinic", "2026-06-01T00:00:00+00:00", False),  # after revocation
        ("clinic", "2027-01-01T00:00:00+00:00", False),  # after end
    ],
)
def test_consent_permits(recipient: str, at: str, expected: bool) -> None:
    from datetime import datetime

    consent = parse(
        ConsentRecord,
        {
            "id": "c-1",
            "participant_id": "p-1",
            "recipient": "clinic",
            "start": "2026-01-01T00:00:00+00:00",
            "end": "2027-01-01T00:00:00+00:00",
            "revoked_at": "2026-05-01T00:00:00+00:00",
        },
    )
    assert consent.permits(recipient, datetime.fromisoformat(at)) is expected
