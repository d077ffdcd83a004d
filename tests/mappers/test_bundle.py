"""The transaction Bundle's shape: conditional requests, stable identifiers, optional entries."""

from __future__ import annotations

import re
from typing import Any

import pytest

from . import samples as s


def _requests(bundle: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [
        (e["request"]["method"], e["request"]["url"], e["request"].get("ifNoneExist"))
        for e in bundle["entry"]
    ]


SYS = "https://harbor-recovery.example.org/fhir/id"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {},
            [
                ("POST", "Organization", f"identifier={SYS}/organization%7Charbor-recovery"),
                ("POST", "Practitioner", f"identifier={SYS}/practitioner%7Cpeer-1"),
                ("POST", "Encounter", f"identifier={SYS}/encounter%7Cenc-1"),
                ("POST", "Procedure", f"identifier={SYS}/procedure%7Cenc-1"),
                ("POST", "DocumentReference", f"identifier={SYS}/note%7Cnote-1"),
                ("POST", "Provenance", f"_tag={SYS}/provenance%7Cnote-1"),
            ],
        ),
        (
            {"send_encounter": False, "send_procedure": False, "update_note": True},
            [
                ("POST", "Organization", f"identifier={SYS}/organization%7Charbor-recovery"),
                ("POST", "Practitioner", f"identifier={SYS}/practitioner%7Cpeer-1"),
                ("PUT", f"DocumentReference?identifier={SYS}/note%7Cnote-1", None),
                ("PUT", f"Provenance?_tag={SYS}/provenance%7Cnote-1", None),
            ],
        ),
        (
            {"note": None},
            [
                ("POST", "Organization", f"identifier={SYS}/organization%7Charbor-recovery"),
                ("POST", "Practitioner", f"identifier={SYS}/practitioner%7Cpeer-1"),
                ("POST", "Encounter", f"identifier={SYS}/encounter%7Cenc-1"),
                ("POST", "Procedure", f"identifier={SYS}/procedure%7Cenc-1"),
            ],
        ),
    ],
    ids=["default", "note-only-update", "session-only"],
)
def test_requests(options: dict[str, Any], expected: list[tuple[str, str, str | None]]) -> None:
    assert _requests(s.bundle(**options)) == expected


def test_identifiers_with_reserved_characters_are_escaped() -> None:
    ctx = s.ctx(identifier_system="urn:oid:2.16.840.1.113883.19")
    bundle = s.bundle(ctx=ctx, encounter=s.encounter("enc.7"), note=s.note(encounter_id="enc.7"))
    assert _requests(bundle)[2] == (
        "POST",
        "Encounter",
        "identifier=urn:oid:2.16.840.1.113883.19/encounter%7Cenc.7",
    )


def test_full_urls_are_stable_unique_and_resolve_inside_the_bundle() -> None:
    one, again = s.bundle(), s.bundle(ctx=s.ctx(now=s.NOW.replace(year=2027)))
    assert one == again  # the clock does not leak into what is sent
    other = s.bundle(encounter=s.encounter("enc-2"), note=s.note("note-2", encounter_id="enc-2"))
    urls = [e["fullUrl"] for e in one["entry"]]
    assert len(set(urls)) == len(urls) and all(u.startswith("urn:uuid:") for u in urls)
    other_urls = [e["fullUrl"] for e in other["entry"]]
    assert urls[:2] == other_urls[:2]  # same organization and peer
    assert not set(urls[2:]) & set(other_urls[2:])  # new session and note
    # every urn:uuid reference points at an entry of this Bundle
    text = str(one)
    assert set(re.findall(r"urn:uuid:[0-9a-f-]{36}", text)) == set(urls)
