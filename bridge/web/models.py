"""Request and response bodies of the HTTP API (pydantic v2); the OpenAPI document is built from these.

Peer-side records (:class:`bridge.domain.PeerEncounter`, :class:`bridge.domain.PeerNote`) are the
request bodies as they are: one schema for the API, the store and the mappers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.domain import PeerNote, Referral


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Violation(BaseModel):
    """One scope-of-practice or privacy finding: which rule, how bad, and the words that triggered it."""

    model_config = ConfigDict(extra="allow")

    rule: str
    severity: str
    message: str
    evidence: Any = None


class ErrorBody(BaseModel):
    """Every error answer. ``code`` is stable; other keys depend on the code (field, violations ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    request_id: str | None = None
    field: str | None = None
    violations: list[Violation] | None = None


class Accepted(_Body):
    """202: the work is accepted; poll ``status_url`` with the tracking id. ``state`` is ``queued``,
    or ``held`` with ``hold_reasons`` (a co-sign or an escalation missing; never sent while held)."""

    submission_id: str
    state: str
    status_url: str
    replayed: bool = False
    hold_reasons: list[Violation] = Field(default_factory=list)
    # accepted all the same, with advice: e.g. a session under one billable unit
    warnings: list[Violation] = Field(default_factory=list)


class WrittenResource(_Body):
    type: str
    id: str
    status: int


class SkippedResource(_Body):
    type: str
    reason: str


class SubmissionView(_Body):
    """The state of one queued submission. No note text: integrators read this too."""

    id: str
    kind: str
    record_id: str
    endpoint: str
    state: str
    attempts: int
    fhir_ids: dict[str, str] = Field(default_factory=dict)
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    delivered_at: datetime | None = None  # when the EHR accepted it (state "delivered")
    # held: the rules it waits for (rule names only: integrators read this; evidence is note text)
    hold_rules: list[str] = Field(default_factory=list)
    # the policy's warnings at acceptance (rule, severity, message; never the evidence)
    warnings: list[Violation] = Field(default_factory=list)
    # delivered: every resource written at the EHR, and anything left out with the reason
    written: list[WrittenResource] = Field(default_factory=list)
    skipped: list[SkippedResource] = Field(default_factory=list)


class OutboxList(_Body):
    items: list[SubmissionView]


class CheckResult(_Body):
    """The policy decision for a note, computed without storing anything."""

    verdict: Literal["allow", "warn", "hold", "block"]
    violations: list[Violation]
    rule_set: str | None = None


class EscalationRequest(_Body):
    """Body of ``POST /api/v1/notes/{id}/escalation``: the Task or Communication that escalated."""

    escalation_ref: Annotated[str, Field(pattern=r"^(Task|Communication)/[A-Za-z0-9\-.]{1,64}$")]


class ReturnRequest(_Body):
    """Body of ``POST /api/v1/notes/{id}/return``: what the author should change."""

    comment: Annotated[str, Field(min_length=1, max_length=2000)]


class HeldNoteItem(_Body):
    """A held note for its co-signer: the note, what holds it, since when."""

    submission_id: str
    note: PeerNote
    hold_reasons: list[Violation]
    held_since: datetime


class HeldList(_Body):
    items: list[HeldNoteItem]


class ReferralList(_Body):
    items: list[Referral]


FhirReference = Annotated[str, Field(pattern=r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")]


class ReferralActionRequest(_Body):
    """Body of ``POST /api/v1/referrals/{id}/{action}``. Declining needs a reason."""

    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    outputs: Annotated[list[FhirReference], Field(max_length=50)] = Field(default_factory=list)


class CheckStatus(_Body):
    ok: bool
    detail: str | None = None


class Health(_Body):
    status: Literal["ok", "degraded"]
    checks: dict[str, CheckStatus]
