"""Request bodies used across the web tests (made-up people, unique ids per call)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from bridge.domain import PeerEncounter, parse
from bridge.exchange.views import Actor

if TYPE_CHECKING:
    from bridge.exchange.wiring import ExchangeService

PARTICIPANT = "part-1"
SESSION = "enc-seed"  # the session the notes here document (``seed_sessions``)
PROVISIONAL = "prov-1"  # a provisional peer supervised by sup-1: their notes wait for a co-sign
PROVISIONAL_SESSION = "enc-seed-prov"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def encounter(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": uid("enc"),
        "participant_id": PARTICIPANT,
        "peer_id": "peer-1",
        "start": "2026-03-02T14:00:00-06:00",
        "end": "2026-03-02T14:45:00-06:00",
        "setting": "community",
        "location_name": "Harbor drop-in center",
        "activities": ["recovery-coaching"],
    }
    body.update(over)
    return body


def note(
    text: str = "Talked about steps toward stable housing; will call the benefits office.", **over: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": uid("note"),
        "participant_id": PARTICIPANT,
        "author_id": "peer-1",
        "encounter_id": SESSION,
        "audience": "care-team",
        "text": text,
        "written_at": "2026-03-02T15:00:00-06:00",
    }
    body.update(over)
    return body


def provisional_note(
    text: str = "Worked on the housing application together.", **over: Any
) -> dict[str, Any]:
    """A note by the provisional peer: held until sup-1 co-signs."""
    return note(text, author_id=PROVISIONAL, encounter_id=PROVISIONAL_SESSION, **over)


async def seed_sessions(exchange: ExchangeService) -> None:
    """Submit the sessions the notes document (a note is sent with its session): peer-1's and the
    provisional peer's."""
    for peer, session in (("peer-1", SESSION), (PROVISIONAL, PROVISIONAL_SESSION)):
        actor = Actor(f"practitioner:{peer}", "peer-specialist", "harbor-recovery", practitioner_id=peer)
        record = parse(PeerEncounter, encounter(id=session, peer_id=peer, billable=False))
        await exchange.submissions.submit_encounter(record, actor=actor)
