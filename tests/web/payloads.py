"""Request bodies used across the web tests (made-up people, unique ids per call)."""

from __future__ import annotations

import uuid
from typing import Any


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def encounter(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": uid("enc"),
        "participant_id": "part-1",
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
        "participant_id": "part-1",
        "author_id": "peer-1",
        "audience": "care-team",
        "text": text,
        "written_at": "2026-03-02T15:00:00-06:00",
    }
    body.update(over)
    return body
