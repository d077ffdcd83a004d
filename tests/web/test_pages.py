"""How the pages say things (pure): dates in words in the reader's zone, marked evidence, errors in
plain words. The clock is frozen at a non-UTC instant, where "today" differs by zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.errors import InputError, PolicyError
from bridge.web import pages

CHICAGO = ZoneInfo("America/Chicago")
# Monday 7 Dec 2026, 20:30 in Chicago = Tuesday 02:30 UTC
NOW = datetime(2026, 12, 7, 20, 30, tzinfo=CHICAGO)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (datetime(2026, 12, 7, 8, 0, tzinfo=CHICAGO), "today"),
        (datetime(2026, 12, 8, 1, 0, tzinfo=UTC), "today"),  # still Monday evening in Chicago
        (datetime(2026, 12, 8, 9, 0, tzinfo=CHICAGO), "tomorrow"),
        (datetime(2026, 12, 6, 9, 0, tzinfo=CHICAGO), "yesterday"),
        (datetime(2026, 12, 10, 9, 0, tzinfo=CHICAGO), "Thursday"),
        (datetime(2026, 12, 3, 9, 0, tzinfo=CHICAGO), "last Thursday"),
        (datetime(2026, 12, 21, 9, 0, tzinfo=CHICAGO), "21 Dec"),
        (datetime(2027, 1, 4, 9, 0, tzinfo=CHICAGO), "4 Jan 2027"),
    ],
)
def test_dates_in_words_in_the_readers_zone(value: datetime, words: str) -> None:
    assert pages.when_words(value, NOW, CHICAGO) == words


def test_the_same_instant_is_another_day_in_another_zone() -> None:
    value = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)  # Tuesday 06:00 in Chicago
    assert pages.when_words(value, NOW, CHICAGO) == "tomorrow"
    assert pages.when_words(value, NOW, UTC) == "today"  # it is already Tuesday in UTC


def test_an_unknown_or_encoded_zone_cookie() -> None:
    assert pages.zone("America%2FChicago") == CHICAGO
    assert pages.zone("Mars/Olympus") is UTC and pages.zone(None) is UTC and pages.zone("../etc") is UTC


def test_evidence_is_marked_and_bad_spans_are_left_alone() -> None:
    text = "Told her to cut her dose. Fine otherwise."
    violations = [
        {"rule": "r", "severity": "block", "evidence": [{"text": "cut her dose", "start": 12, "end": 24}]},
        {"rule": "s", "severity": "warn", "evidence": [{"text": "x", "start": 20, "end": 30}]},  # overlaps
        {"rule": "t", "severity": "warn", "evidence": [{"text": "x", "start": 40, "end": 99}]},  # outside
        {"rule": "u", "severity": "warn", "evidence": "otherwise"},  # words only: not marked
    ]
    assert pages.highlight(text, violations) == [
        ("Told her to ", None),
        ("cut her dose", "block"),
        (". Fine otherwise.", None),
    ]


def test_errors_in_plain_words_with_the_ids_kept_for_details() -> None:
    def satisfied_by(rule: str) -> str | None:
        return "escalation" if rule == "content.risk-of-harm" else None

    field = pages.plain_error(InputError("location_name", "at most 200 characters"), satisfied_by)
    assert field["detail"] == "Please check the place: at most 200 characters"
    assert field["code"] == "invalid_input" and field["field"] == "location_name"
    risk = {"rule": "content.risk-of-harm", "severity": "hold", "message": "Escalate now.", "evidence": ["x"]}
    policy = pages.plain_error(PolicyError("held", [risk]), satisfied_by)
    assert policy["risk"] and [f.message for f in policy["findings"]] == ["Escalate now."]
    assert [f.rule for f in policy["findings"]] == ["content.risk-of-harm"]
