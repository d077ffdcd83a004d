"""What the engine is asked to judge about a note: :class:`NoteFacts`.

A note can arrive fully formed (a :class:`bridge.domain.PeerNote` with its author and encounter)
or as a partial draft (the ``bridge rules check`` input, the web dry run). Both become NoteFacts.
What the facts leave out is not judged: text alone is checked for content (and audience, when
given); billing rules apply only when ``billable`` is true; supervision rules only when the
author's certification level is known; consent only when a ``recipient`` is named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from bridge.domain import (
    Activity,
    Audience,
    CertificationLevel,
    ConsentRecord,
    ContactMethod,
    Modality,
    NoteKind,
    PeerEncounter,
    PeerNote,
    PeerWorker,
    Role,
)


class BillingUsage(BaseModel):
    """Units already billed for this participant, so caps can be applied without a store lookup."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    units_today: Annotated[int, Field(ge=0)] = 0
    units_in_period: Annotated[int, Field(ge=0)] = 0  # the jurisdiction's rolling period
    hours_in_year: Annotated[float, Field(ge=0)] = 0.0


class NoteFacts(BaseModel):
    """A note and the facts around it, all optional except the text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role = Role.PEER_SPECIALIST
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    audience: Audience | None = None
    kind: NoteKind | None = None
    participant_id: str | None = None
    # supervision
    certification_level: CertificationLevel | None = None
    cosigned: bool = False
    last_supervision: dt.date | None = None
    # risk of harm: the escalation (Task/Communication id) that was made, if any
    escalation_ref: str | None = None
    escalated: bool = False
    # disclosure: judged only when a recipient is named
    recipient: str | None = None
    consents: tuple[ConsentRecord, ...] = ()
    sud_related: bool = True
    # documentation and billing: judged only when billable
    billable: bool = False
    service_type: str | None = None
    program: str | None = None
    date: dt.date | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    minutes: Annotated[int, Field(ge=0)] | None = None
    location: str | None = None
    modality: Modality | None = None
    method: ContactMethod | None = None
    activities: tuple[Activity, ...] = ()
    group_size: Annotated[int, Field(ge=1)] | None = None
    summary: str | None = None
    goal: str | None = None
    progress: str | None = None
    signer: str | None = None
    credential: str | None = None
    usage: BillingUsage = Field(default_factory=BillingUsage)
    # time: when the note was written, and "now" for recency checks (no clock reads in the engine)
    written_at: AwareDatetime | None = None
    at: AwareDatetime | None = None
    # free-form annotations (the labeled corpus keeps its expected verdict here); never judged
    expect: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> NoteFacts:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end: must be after start")
        return self

    @property
    def has_escalation(self) -> bool:
        return self.escalated or bool(self.escalation_ref)

    @property
    def session_minutes(self) -> int | None:
        if self.minutes is not None:
            return self.minutes
        if self.start is not None and self.end is not None:
            return int((self.end - self.start).total_seconds() // 60)
        return None

    @property
    def service_date(self) -> dt.date | None:
        if self.date is not None:
            return self.date
        return self.start.date() if self.start is not None else None

    @property
    def now(self) -> dt.datetime | None:
        return self.at or self.written_at

    @classmethod
    def from_records(
        cls,
        note: PeerNote,
        *,
        author: PeerWorker | None = None,
        encounter: PeerEncounter | None = None,
        recipient: str | None = None,
        consents: Sequence[ConsentRecord] = (),
        usage: BillingUsage | None = None,
        program: str | None = None,
        at: dt.datetime | None = None,
    ) -> NoteFacts:
        """Facts from the domain records. Billing applies when the encounter is given and billable."""
        data: dict[str, Any] = {
            "text": note.text,
            "audience": note.audience,
            "kind": note.kind,
            "participant_id": note.participant_id,
            "cosigned": note.cosigned,
            "escalation_ref": note.escalation_ref,
            "recipient": recipient,
            "consents": tuple(consents),
            "sud_related": note.sud_related,
            "summary": note.summary,
            "goal": note.goal,
            "progress": note.progress,
            "written_at": note.written_at,
            "at": at,
            "program": program,
            "usage": usage or BillingUsage(),
        }
        if author is not None:
            data |= {
                "role": author.role,
                "certification_level": author.certification_level,
                "last_supervision": author.last_supervision,
                "signer": author.id,
                "credential": author.credential,
            }
        if encounter is not None:
            data |= {
                "billable": encounter.billable,
                "service_type": ",".join(a.value for a in encounter.activities),
                "start": encounter.start,
                "end": encounter.end,
                "location": encounter.location_name,
                "modality": encounter.modality,
                "method": encounter.method,
                "activities": encounter.activities,
                "group_size": encounter.group_size,
            }
        return cls.model_validate(data)

    def billing_field(self, name: str) -> object:
        """The value of a required billing field by its rule-file name (``None`` when absent)."""
        if name == "participant":
            return self.participant_id
        if name == "date":
            return self.service_date
        return getattr(self, name)
