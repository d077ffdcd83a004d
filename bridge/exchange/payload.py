"""What an outbox item carries: the peer-side records, typed (mapped to FHIR only at delivery).

Stored as JSON in ``outbox.payload``; read back with :meth:`OutboxPayload.read`, which raises
pydantic's ``ValidationError`` for a payload that no longer reads as records (the worker
dead-letters it naming the error type). Rows written before ``kind`` was stored get it from
what they carry.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from bridge.domain import PeerEncounter, PeerNote


class PayloadKind(StrEnum):
    ENCOUNTER = "encounter"  # a session: Encounter + Procedure
    NOTE = "note"  # a note with the session it documents: DocumentReference (+ Encounter)


class OutboxPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PayloadKind
    encounter: PeerEncounter
    note: PeerNote | None = None
    # the note was delivered before (now co-signed or amended): replace the EHR's copy
    update: bool = False

    @model_validator(mode="after")
    def _note_matches_kind(self) -> OutboxPayload:
        if (self.kind is PayloadKind.NOTE) != (self.note is not None):
            raise ValueError("a note payload carries a note, an encounter payload none")
        return self

    @classmethod
    def read(cls, stored: dict[str, Any]) -> OutboxPayload:
        if "kind" not in stored:  # written before the kind was stored
            stored = {**stored, "kind": PayloadKind.NOTE if "note" in stored else PayloadKind.ENCOUNTER}
        # JSON mode: the records are strict models, and JSON has no datetime or enum types
        return cls.model_validate_json(json.dumps(stored))

    def stored(self) -> dict[str, Any]:
        """The JSON the outbox keeps."""
        return self.model_dump(mode="json", exclude_none=True)

    def record(self) -> dict[str, Any]:
        """The record as the caller sent it (the idempotency hash: a retried request must hash
        the same whatever was derived since, the ``update`` flag or the session copy)."""
        record = self.note if self.note is not None else self.encounter
        return {"kind": self.kind.value, "record": record.model_dump(mode="json")}
