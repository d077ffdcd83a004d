"""Narratives: the ``text`` of every resource the bridge writes, in plain words, for the people who
read the chart (https://hl7.org/fhir/R4/narrative.html; ``status`` generated, XHTML ``div``).

Who, what, when, how long, the goal and the progress, the co-signer; times to the second, in the
session's own offset ("Tuesday 3 March 2026, 14:00:00 (UTC-05:00)"). Pure: everything comes in as
arguments, and the same record always gives the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from html import escape
from typing import Any

from bridge.domain import HumanName, PeerEncounter, PeerNote, PeerWorker
from bridge.mappers.codes import ACTIVITY, CONTACT_METHOD, NOTE_KIND

XHTML = "http://www.w3.org/1999/xhtml"


def narrative(lines: Iterable[str]) -> dict[str, str]:
    """A generated Narrative: one paragraph per line, escaped."""
    body = "".join(f"<p>{escape(line, quote=False)}</p>" for line in lines if line)
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{body}</div>'}


def in_offset(value: datetime, zone: tzinfo | None) -> datetime:
    """``value`` to the second, in ``zone`` (the session's offset) when given."""
    moved = value.astimezone(zone) if zone is not None else value
    return moved.replace(microsecond=0)


def when(value: datetime, zone: tzinfo | None = None) -> str:
    """``Tuesday 3 March 2026, 14:00:05 (UTC-05:00)``."""
    at = in_offset(value, zone)
    offset = at.strftime("%z")
    sign, hours, minutes = offset[0], offset[1:3], offset[3:5]
    return f"{at:%A} {at.day} {at:%B %Y, %H:%M:%S} (UTC{sign}{hours}:{minutes})"


def clock(value: datetime, zone: tzinfo | None = None) -> str:
    return f"{in_offset(value, zone):%H:%M:%S}"


def person(name: HumanName) -> str:
    return f"{name.given} {name.family}"


def signature(worker: PeerWorker) -> str:
    return f"{person(worker.name)}, {worker.credential}"


def activities(encounter: PeerEncounter) -> str:
    names = [ACTIVITY[a] for a in encounter.activities]
    return ", ".join([names[0], *[n[0].lower() + n[1:] for n in names[1:]]]) if names else ""


def note_title(note: PeerNote, encounter: PeerEncounter | None) -> str:
    """What the note is: its kind, and for a session's note the activities and the length."""
    kind = NOTE_KIND[note.kind]
    if encounter is None:
        return kind
    return f"{kind}: {activities(encounter).lower()}, {encounter.minutes} min"


def session_span(encounter: PeerEncounter) -> str:
    zone = encounter.start.tzinfo
    return f"{when(encounter.start, zone)} to {clock(encounter.end, zone)}, {encounter.minutes} minutes"


def session_lines(
    encounter: PeerEncounter,
    *,
    participant: HumanName,
    peer: PeerWorker,
    organization: str,
    referral: str | None,
) -> list[str]:
    method = CONTACT_METHOD[encounter.method][1].lower()
    group = f", group of {encounter.group_size}" if encounter.group_size is not None else ", one to one"
    return [
        f"Peer support session with {person(participant)} ({method}{group}) at {encounter.location_name}.",
        f"When: {session_span(encounter)}.",
        f"What: {activities(encounter)}.",
        f"Peer: {signature(peer)}, {organization}.",
        f"For: {referral}." if referral else "",
        "Billable peer support (H0038)." if encounter.billable else "Not billed.",
    ]


def service_lines(
    encounter: PeerEncounter, *, participant: HumanName, peer: PeerWorker, organization: str
) -> list[str]:
    return [
        f"Peer support service delivered to {person(participant)}: {activities(encounter)}.",
        f"When: {session_span(encounter)}.",
        f"By: {signature(peer)}, {organization}.",
    ]


def note_lines(
    note: PeerNote,
    *,
    encounter: PeerEncounter | None,
    participant: HumanName | None,
    peer: PeerWorker,
    cosigner: PeerWorker | None,
    status: str,
    notice: str | None,
) -> list[str]:
    zone = encounter.start.tzinfo if encounter is not None else None
    about = f" about {person(participant)}" if participant is not None else ""
    what = f": {activities(encounter).lower()}, {encounter.minutes} min session" if encounter else ""
    lines = [notice or "", f"{NOTE_KIND[note.kind]}{about}{what}."]
    lines.append(f"Written by {signature(peer)} on {when(note.written_at, zone)}.")
    if encounter is not None:
        lines.append(f"Session: {session_span(encounter)}, at {encounter.location_name}.")
    for label, value in (
        ("Activities", note.summary),
        ("Recovery-plan goal", note.goal),
        ("Progress toward the goal", note.progress),
    ):
        if value:
            lines.append(f"{label}: {value}")
    if cosigner is not None and note.cosigned_at is not None:
        lines.append(f"Co-signed by {signature(cosigner)} on {when(note.cosigned_at, zone)}.")
    elif status == "preliminary":
        lines.append("Preliminary: waiting for the peer supervisor's co-signature.")
    return lines


def provenance_lines(
    note: PeerNote,
    *,
    encounter: PeerEncounter | None,
    peer: PeerWorker,
    cosigner: PeerWorker | None,
    organization: str,
) -> list[str]:
    zone = encounter.start.tzinfo if encounter is not None else None
    lines = [
        f"{note_title(note, encounter)}. Written by {signature(peer)} for {organization} on "
        f"{when(note.written_at, zone)}."
    ]
    if cosigner is not None and note.cosigned_at is not None:
        lines.append(f"Co-signed by {signature(cosigner)} on {when(note.cosigned_at, zone)}.")
    lines.append("Sent to this record by Peer Bridge.")
    return lines


def practitioner_lines(worker: PeerWorker, organization: str, role: str) -> list[str]:
    return [f"{signature(worker)}: {role}, {organization}."]


def organization_lines(name: str) -> list[str]:
    return [f"{name}: peer support organization (peer recovery services)."]


def task_lines(
    status_text: str, business: str | None, at: datetime, outputs: Sequence[str], reason: str | None
) -> list[str]:
    lines = [f"Referral to peer support: {status_text}" + (f" ({business})" if business else "") + "."]
    lines.append(f"Last changed by the peer organization on {when(at)}.")
    if reason:
        lines.append(f"Reason: {reason}")
    if outputs:
        lines.append(f"Services delivered: {', '.join(outputs)}.")
    return lines


def with_text(resource: dict[str, Any], lines: Iterable[str]) -> dict[str, Any]:
    """``resource`` with its narrative, placed after ``meta`` as the spec orders elements."""
    out: dict[str, Any] = {}
    for key, value in resource.items():
        if key == "text":
            continue
        out[key] = value
        if key == "meta":
            out["text"] = narrative(lines)
    if "text" not in out:
        out = {"resourceType": resource["resourceType"], "text": narrative(lines), **out}
    return out
