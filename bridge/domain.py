"""Peer-side records: what peer workers and the bridge talk about, before any FHIR.

All models are strict pydantic v2 (no silent coercion, unknown fields refused, frozen). Datetimes
must carry a timezone: a note written at "14:00" in Austin is not the same instant as in Richmond.
Invalid input raises :class:`bridge.errors.InputError` through :func:`parse` naming the field.

Billable-note fields follow Texas 26 TAC 301.361 (the closest codified list, see shared domain.md):
participant, service type, date, start and end time, location, modality, method, summary of
activities, recovery-plan goal and progress, signer with credential, written within 2 business days.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bridge.errors import InputError

_URI = re.compile(r"^(urn:(oid|uuid):[0-9A-Za-z.\-]+|https?://\S+)$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # the FHIR `id` grammar, so our ids can be used as-is


def _check_uri(value: str) -> str:
    if not _URI.match(value):
        raise ValueError("must be an absolute URI (http(s)://…, urn:oid:… or urn:uuid:…)")
    return value


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("must be 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
    return value


Uri = Annotated[str, AfterValidator(_check_uri)]
RecordId = Annotated[str, AfterValidator(_check_id)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, use_enum_values=False)


class Identifier(_Record):
    """A business identifier: ``system`` is an absolute URI, ``value`` has no whitespace."""

    system: Uri
    value: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^\S+$")]


# --- code-like enums (the FHIR codes they map to live in bridge.mappers.codes) -------------------


class Audience(StrEnum):
    """Who may read a note. ``peer-team`` never leaves the bridge."""

    PEER_TEAM = "peer-team"
    CARE_TEAM = "care-team"
    RESTRICTED = "restricted"  # 42 CFR Part 2: sent only with consent on file, labeled, with notice


class NoteKind(StrEnum):
    PROGRESS = "progress"
    GROUP = "group"
    CRISIS = "crisis"
    SUPERVISION = "supervision"
    OUTREACH = "outreach"


class Modality(StrEnum):
    INDIVIDUAL = "individual"
    GROUP = "group"


class ContactMethod(StrEnum):
    FACE_TO_FACE = "face-to-face"
    PHONE = "phone"
    TELEHEALTH = "telehealth"


class Setting(StrEnum):
    """Where the session happened; maps to Encounter.class (v3-ActCode)."""

    OFFICE = "office"  # AMB
    HOME = "home"  # HH
    COMMUNITY = "community"  # FLD (field: street, shelter, court, ED hallway)
    VIRTUAL = "virtual"  # VR


class Activity(StrEnum):
    """What the peer did. Allowed-but-not-billable activities are a jurisdiction rule, not a type."""

    RECOVERY_COACHING = "recovery-coaching"
    LIVED_EXPERIENCE = "lived-experience-sharing"
    RECOVERY_PLANNING = "recovery-planning"
    RESOURCE_NAVIGATION = "resource-navigation"
    ACCOMPANIMENT = "accompaniment"
    GROUP_FACILITATION = "group-facilitation"
    ADVOCACY = "advocacy"
    CRISIS_SUPPORT = "crisis-support"
    WARM_HANDOFF = "warm-handoff"  # follow-up after an ED overdose visit
    TRANSPORTATION = "transportation"
    OUTREACH = "outreach"
    CASE_MANAGEMENT = "case-management"


class CertificationLevel(StrEnum):
    TRAINEE = "trainee"
    PROVISIONAL = "provisional"  # initial/intern certification: supervision and co-sign rules apply
    CERTIFIED = "certified"
    SUPERVISOR = "supervisor"


class Endorsement(StrEnum):
    """Certification type (Texas: mental health vs recovery support)."""

    RECOVERY_SUPPORT = "recovery-support"  # substance use
    MENTAL_HEALTH = "mental-health"
    FAMILY = "family"
    YOUTH = "youth"


class Role(StrEnum):
    PEER_SPECIALIST = "peer-specialist"
    PEER_SUPERVISOR = "peer-supervisor"
    CLINICIAN = "clinician"
    CARE_COORDINATOR = "care-coordinator"
    INTEGRATOR = "integrator"


class ReferralStatus(StrEnum):
    """Task.status values in the SDOH Clinical Care bound set."""

    DRAFT = "draft"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ENTERED_IN_ERROR = "entered-in-error"


class NoteStatus(StrEnum):
    DRAFT = "draft"  # still being written; never sent
    FINAL = "final"  # signed by its author; preliminary at the EHR until co-signed where required
    AMENDED = "amended"


# --- people ------------------------------------------------------------------------------------


class HumanName(_Record):
    given: NonEmpty
    family: NonEmpty


class Address(_Record):
    line: NonEmpty
    city: NonEmpty
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    postal_code: Annotated[str, Field(pattern=r"^\d{5}(-\d{4})?$")]


class Participant(_Record):
    """The person receiving peer support. ``identifiers`` maps EHR endpoint name -> patient identifier."""

    id: RecordId
    name: HumanName
    birth_date: date | None = None
    phone: str | None = None
    address: Address | None = None
    employer: str | None = None
    household_id: str | None = None
    family_ids: tuple[RecordId, ...] = ()
    identifiers: dict[str, Identifier] = Field(default_factory=dict)
    home_endpoint: str | None = None

    def identifier_for(self, endpoint: str) -> Identifier:
        try:
            return self.identifiers[endpoint]
        except KeyError:
            raise InputError(
                "participant.identifiers", f"no patient identifier for endpoint {endpoint!r}"
            ) from None


class PeerWorker(_Record):
    """A peer recovery specialist or supervisor."""

    id: RecordId
    name: HumanName
    credential: NonEmpty  # as signed on notes, e.g. "CPRS", "PRSS", "CRPS"
    certification_level: CertificationLevel
    endorsements: tuple[Endorsement, ...] = (Endorsement.RECOVERY_SUPPORT,)
    supervisor_id: RecordId | None = None
    organization_id: RecordId
    npi: Annotated[str, Field(pattern=r"^\d{10}$")] | None = None
    role: Role = Role.PEER_SPECIALIST
    last_supervision: date | None = None
    address: Address | None = None
    employer: str | None = None
    household_id: str | None = None
    family_ids: tuple[RecordId, ...] = ()


# --- work --------------------------------------------------------------------------------------


class PeerEncounter(_Record):
    """One peer session. ``id`` is stable and unique within the peer organization."""

    id: RecordId
    participant_id: RecordId
    peer_id: RecordId
    referral_id: RecordId | None = None
    start: AwareDatetime
    end: AwareDatetime
    setting: Setting
    location_name: Annotated[str, Field(min_length=1, max_length=200)]  # a place's name, not a story
    modality: Modality = Modality.INDIVIDUAL
    method: ContactMethod = ContactMethod.FACE_TO_FACE
    activities: Annotated[tuple[Activity, ...], Field(min_length=1)]
    group_size: Annotated[int, Field(ge=2, le=100)] | None = None
    billable: bool = True
    endpoint: str | None = None  # explicit routing; else the referral's source, else participant's home

    @model_validator(mode="after")
    def _consistent(self) -> PeerEncounter:
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        if self.modality is Modality.GROUP and self.group_size is None:
            raise ValueError("group_size: required for group sessions")
        if self.modality is Modality.INDIVIDUAL and self.group_size is not None:
            raise ValueError("group_size: only for group sessions")
        return self

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


class PeerNote(_Record):
    """A note a peer writes. ``text`` is PHI: never logged."""

    id: RecordId
    participant_id: RecordId
    author_id: RecordId
    encounter_id: RecordId | None = None
    kind: NoteKind = NoteKind.PROGRESS
    audience: Audience
    text: Annotated[str, Field(min_length=1, max_length=100_000)]
    written_at: AwareDatetime
    status: NoteStatus = NoteStatus.FINAL
    # billable documentation (applies when the encounter is billable)
    summary: str | None = None
    goal: str | None = None  # the recovery-plan goal addressed
    progress: str | None = None  # progress toward that goal
    # supervision / co-sign
    cosigner_id: RecordId | None = None
    cosigned_at: AwareDatetime | None = None
    # privacy
    sud_related: bool = True  # peer recovery support is SUD-related unless said otherwise
    # risk of harm: the Task/Communication id of the escalation, when one was made
    escalation_ref: str | None = None
    endpoint: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PeerNote:
        if (self.cosigner_id is None) != (self.cosigned_at is None):
            raise ValueError("cosigned_at: cosigner_id and cosigned_at go together")
        if self.cosigned_at is not None and self.cosigned_at < self.written_at:
            raise ValueError("cosigned_at: must not be before written_at")
        return self

    @property
    def cosigned(self) -> bool:
        return self.cosigner_id is not None


class ReferralAppointment(_Record):
    start: AwareDatetime
    description: str | None = None


class ReferralContact(_Record):
    """The minimum-necessary view of the referred person."""

    name: HumanName
    phone: str | None = None
    birth_date: date | None = None
    preferred_language: str | None = None


class Referral(_Record):
    """A clinical referral to peer services, in the peer view (minimum necessary)."""

    id: RecordId
    endpoint: str  # the EHR it came from (answers go back there)
    task_id: str
    task_version: str | None = None
    service_request_id: str
    status: ReferralStatus
    business_status: str | None = None
    status_reason: str | None = None
    authored_on: AwareDatetime | None = None
    last_modified: AwareDatetime | None = None
    # the Task's meta.lastUpdated at the EHR: what orders its versions (version ids are opaque)
    task_updated: AwareDatetime | None = None
    requester: str | None = None  # display name of the referring clinician/organization
    requester_ref: str | None = None  # the referring clinician at the EHR (told when a note arrives)
    patient_id: str | None = None  # the patient's id at that endpoint
    contact: ReferralContact | None = None
    reason: str | None = None  # plain-language reason
    goals: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    appointments: tuple[ReferralAppointment, ...] = ()
    priority: str | None = None
    due: AwareDatetime | None = None  # Task.restriction.period.end: when the clinic wants it done
    outputs: tuple[str, ...] = ()  # references to delivered Encounters/Procedures
    consent_ref: str | None = None


class ConsentRecord(_Record):
    """A 42 CFR Part 2 consent to disclose SUD records to a recipient for a purpose."""

    id: RecordId
    participant_id: RecordId
    recipient: NonEmpty  # the EHR endpoint name (or organization) allowed to receive
    purpose: Annotated[str, Field(pattern=r"^[A-Z]+$")] = "TREAT"
    start: AwareDatetime
    end: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ConsentRecord:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end: must be after start")
        return self

    def permits(self, recipient: str, at: datetime, purpose: str = "TREAT") -> bool:
        """True when this consent lets ``recipient`` receive records for ``purpose`` at ``at``."""
        if recipient != self.recipient or purpose != self.purpose:
            return False
        if at < self.start or (self.end is not None and at >= self.end):
            return False
        return self.revoked_at is None or at < self.revoked_at


# --- parsing -----------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...], msg: str) -> tuple[str, str]:
    path = ".".join(str(p) for p in loc)
    # model validators report "field: reason" in the message; lift the field into the path
    text = msg.removeprefix("Value error, ")
    head, sep, rest = text.partition(": ")
    if sep and re.fullmatch(r"[a-z_]+", head):
        path = f"{path}.{head}" if path else head
        text = rest
    return path or "(record)", text


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` (a dict from JSON) as ``model``; raise InputError naming the first bad field.

    JSON has no datetime or enum types, so strings are accepted for those (pydantic's JSON mode).
    """
    try:
        if isinstance(data, (str, bytes)):
            return model.model_validate_json(data)
        return model.model_validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field, reason = _field_path(tuple(err["loc"]), err["msg"])
        raise InputError(field, reason) from None
