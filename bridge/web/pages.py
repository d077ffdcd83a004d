"""How the workspace pages say things: dates in words in the reader's time zone, referral and note
states in plain words, errors as headlines a peer can act on (rule ids kept for a details toggle),
and a note's text cut into segments with the words a rule matched marked. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.errors import BridgeError

TZ_COOKIE = "bridge_tz"  # the browser's IANA time zone, set by the page's script

STATUS_WORDS = {
    "draft": "Draft",
    "requested": "New",
    "accepted": "Accepted",
    "rejected": "Declined",
    "in-progress": "In progress",
    "on-hold": "On hold",
    "completed": "Completed",
    "failed": "Could not be done",
    "cancelled": "Cancelled",
    "entered-in-error": "Withdrawn",
}

# what the clinic reads as the Task's status reason when a peer declines
DECLINE_REASONS = (
    "Outside our service area",
    "No capacity to take this on now",
    "The person declined peer support",
    "Needs a service we do not offer",
    "Could not reach the person",
    "Conflict of interest (dual relationship)",
)

AUDIENCE_WORDS = {
    "care-team": "Care team (sent to the clinic)",
    "restricted": "Restricted: substance use record (42 CFR Part 2)",
    "peer-team": "Peer team only (stays here)",
}

NOTE_STATE_WORDS = {
    "held": "Held",
    "returned": "Returned to you",
    "sending": "Sending",
    "sent": "Sent",
    "failed": "Failed",
}

# the error codes the pages meet, as a headline in plain words
HEADLINES = {
    "scope_violation": "This note can't be sent as written.",
    "invalid_input": "Something in the form needs a change.",
    "invalid_transition": "This referral can't move that way now.",
    "policy_refused": "This note can't be sent as it is.",
    "consent_required": "This note needs the person's consent on file before it can be sent.",
    "access_denied": "You can't do that.",
    "not_held": "That note is no longer waiting: it was already resolved.",
    "not_found": "That record could not be found.",
    "forbidden": "You can't do that.",
    "authorship_mismatch": "You can only submit your own work.",
    "identity_mismatch": "Your account and the directory disagree: ask your administrator.",
    "record_id_taken": "That record belongs to someone else.",
}

FIELD_WORDS = {
    "participant_id": "the participant",
    "referral_id": "the referral",
    "encounter_id": "the session",
    "start": "the start time",
    "end": "the end time",
    "tz": "the time zone",
    "setting": "where it happened",
    "location_name": "the place",
    "activities": "what you did",
    "text": "the note",
    "summary": "the summary",
    "goal": "the recovery-plan goal",
    "progress": "the progress",
    "outputs": "the services delivered",
    "group_size": "how many took part",
    "reason": "the reason",
    "comment": "the comment",
    "told": "who you told",
    "when": "when you told them",
}


def zone(name: str | None) -> tzinfo:
    """The reader's zone from the page's cookie; UTC when absent or unknown."""
    if name:
        try:
            return ZoneInfo(unquote(name))  # the script URL-encodes it ("America%2FChicago")
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def when_words(value: datetime | None, now: datetime, tz: tzinfo) -> str:
    """``today``, ``tomorrow``, ``yesterday``, a weekday within a week (``Thursday``), else a date
    (``14 Dec``, with the year when it is not this year) — in the reader's zone."""
    if value is None:
        return ""
    local, today = value.astimezone(tz), now.astimezone(tz)
    days = (local.date() - today.date()).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    if -6 <= days <= 6:
        return ("last " if days < 0 else "") + local.strftime("%A")
    fmt = "%d %b" if local.year == today.year else "%d %b %Y"
    return local.strftime(fmt).lstrip("0")


def time_words(value: datetime | None, now: datetime, tz: tzinfo) -> str:
    """``Thursday 14:30`` (day in words, time in the reader's zone)."""
    if value is None:
        return ""
    return f"{when_words(value, now, tz)} {value.astimezone(tz).strftime('%H:%M')}"


def local_input(value: datetime, tz: tzinfo) -> str:
    """A ``datetime-local`` input's value for ``value`` in the reader's zone."""
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Finding:
    """One violation as the page shows it."""

    message: str
    rule: str
    severity: str
    words: tuple[str, ...]
    field: str | None = None


def findings(violations: Sequence[Mapping[str, Any]]) -> list[Finding]:
    out = []
    for v in violations:
        if v.get("severity") == "returned":
            continue
        ev = v.get("evidence")
        items = ev if isinstance(ev, (list, tuple)) else [ev] if ev else []
        words = tuple(str(e.get("text", "")) if isinstance(e, Mapping) else str(e) for e in items)
        out.append(
            Finding(
                str(v.get("message", "")),
                str(v.get("rule", "")),
                str(v.get("severity", "")),
                tuple(w for w in words if w),
                str(v["field"]) if v.get("field") else None,
            )
        )
    return out


def spans(violations: Sequence[Mapping[str, Any]]) -> list[tuple[int, int, str]]:
    """The (start, end, severity) of each evidence span a violation gives."""
    out = []
    for v in violations:
        ev = v.get("evidence")
        for e in ev if isinstance(ev, (list, tuple)) else [ev] if ev else []:
            if isinstance(e, Mapping) and isinstance(e.get("start"), int) and isinstance(e.get("end"), int):
                out.append((int(e["start"]), int(e["end"]), str(v.get("severity", ""))))
    return sorted(out)


def highlight(text: str, violations: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """``text`` as segments (words, severity or None): the words a rule matched are marked.
    Spans that run outside the text or overlap an earlier one are left unmarked."""
    segments: list[tuple[str, str | None]] = []
    pos = 0
    for start, end, severity in spans(violations):
        if start < pos or end > len(text) or end <= start:
            continue
        if start > pos:
            segments.append((text[pos:start], None))
        segments.append((text[start:end], severity))
        pos = end
    if pos < len(text):
        segments.append((text[pos:], None))
    return segments


def is_risk(violations: Sequence[Mapping[str, Any]], satisfied_by: Any) -> bool:
    """Whether a finding is a risk of harm (resolved by an escalation): show crisis resources."""
    return any(satisfied_by(str(v.get("rule", ""))) == "escalation" for v in violations)


def plain_error(exc: BridgeError, satisfied_by: Any) -> dict[str, Any]:
    """An error as the pages show it: a headline, the field in words, the findings, the words to
    mark in the text, whether it is about a risk of harm; the code and rule ids for details."""
    d = exc.to_dict()
    violations = list(d.get("violations") or [])
    field = d.get("field")
    headline = HEADLINES.get(str(d.get("code")), "That did not work.")
    detail = str(d.get("message", ""))
    if field:
        reason = getattr(exc, "reason", None) or detail
        detail = f"Please check {FIELD_WORDS.get(str(field), str(field).replace('_', ' '))}: {reason}"
    return {
        "headline": headline,
        "detail": detail,
        "code": str(d.get("code", "")),
        "rule": str(d.get("rule") or ""),
        "field": field,
        "findings": findings(violations),
        "violations": violations,
        "risk": is_risk(violations, satisfied_by),
    }
