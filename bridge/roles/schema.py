"""The schema of a rule file (``config/rules/*.toml``), checked at load.

A rule file is TOML with these tables (an overlay may give any subset; it is merged over the
default, tables key by key, lists replaced whole):

``[meta]``               description, jurisdiction, sources (citations for the numbers below)
``[language]``           trigger lexicons for negation, reported speech and clause breaks
``[vocabularies.<name>]`` classes of terms (files and inline lists) the content rules fire on
``[content.<id>]``       note content rules; ``kind`` is ``pattern`` | ``near`` | ``directive`` |
                         ``vocabulary`` | ``model`` (a learned text screen, ``model = "vocab/….tsv"``);
                         any kind may add ``terms``, ``acts`` and ``allow_terms``
``[checks.<area>.<id>]`` severity and message of the fixed checks (billing, supervision, ...)
``[privacy]``            Part 2 notice, consent purpose, DS4P labels
``[minimum_necessary]``  the field allow-list of the peer view of a referral
``[permissions]``        what each role may do to which resource types
``[assignment]``         programs -> endorsements, dual-relationship tests
``[billing]``            code, modifiers, unit math, caps, required fields, non-billable activities
``[supervision]``        which certification levels need a co-sign, supervision recency windows
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bridge.domain import Activity, CertificationLevel, Endorsement, Role

SeverityName = Literal["warn", "hold", "block"]
ContextName = Literal["negated", "reported", "quoted"]
RULE_KINDS = ("pattern", "near", "directive", "vocabulary", "model")
VocabName = Annotated[str, Field(pattern=r"^[a-z0-9\-]+$")]

BILLING_FIELDS = (
    "participant",
    "service_type",
    "date",
    "start",
    "end",
    "location",
    "modality",
    "method",
    "summary",
    "goal",
    "progress",
    "signer",
    "credential",
)


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad pattern: {exc}") from None
    return value


def _check_field_path(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*", value):
        raise ValueError("must be a FHIR element path like 'name' or 'reasonCode.text'")
    return value


Pattern = Annotated[str, AfterValidator(_check_regex)]
Patterns = Annotated[list[Pattern], Field(min_length=1)]
FieldPath = Annotated[str, AfterValidator(_check_field_path)]
Text = Annotated[str, Field(min_length=1)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetaSpec(_Spec):
    description: Text
    jurisdiction: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    sources: list[str] = Field(default_factory=list)


class LanguageSpec(_Spec):
    negation: Patterns
    pseudo_negation: list[Pattern] = Field(default_factory=list)
    reported: Patterns
    peer_speaker: Patterns
    clause_breaks: Patterns
    negation_window: Annotated[int, Field(ge=1, le=30)] = 8


class ActSpec(_Spec):
    """Classes that must meet in one clause (or sentence): every ``cues`` group, judged in context,
    and every ``objects`` group, anywhere there, within ``window`` words of the first cue."""

    cues: Annotated[list[Annotated[list[VocabName], Field(min_length=1)]], Field(min_length=1)]
    objects: list[Annotated[list[VocabName], Field(min_length=1)]] = Field(default_factory=list)
    window: Annotated[int, Field(ge=1, le=40)] = 8
    scope: Literal["clause", "sentence"] = "clause"
    reach: Annotated[int, Field(ge=1, le=60)] | None = None  # to an object; default: window
    ordered: bool = False
    allow_on: Literal["cues", "all"] = "cues"
    back: bool = True  # objects may stand in the sentence before ("His viral load was 48. I told him...")


class VocabularySpec(_Spec):
    """A class of terms. ``files`` are read relative to the rules folder: one term per line, or
    ``term<TAB>entry`` to name what it stands for; ``#`` starts a comment. ``terms`` are inline;
    ``add`` is for overlays (lists are replaced whole when merged, so a state adds its own here)."""

    source: Text
    match: Literal["exact", "stem"] = "stem"
    fuzzy: bool = False
    files: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-/.]+$")]] = Field(default_factory=list)
    terms: list[Text] = Field(default_factory=list)
    add: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> VocabularySpec:
        if not (self.files or self.terms or self.add):
            raise ValueError("terms: a vocabulary needs files, terms or add")
        return self


class _RuleSpec(_Spec):
    severity: SeverityName
    message: Text
    roles: Annotated[list[Role], Field(min_length=1)]
    unless: list[ContextName] = Field(default_factory=list)
    enabled: bool = True
    case_sensitive: bool = False
    # what releases a hold: an escalation on record, or a supervisor's co-sign (review)
    satisfied_by: Literal["escalation", "cosign"] | None = None
    why: str | None = None
    terms: list[VocabName] = Field(default_factory=list)
    acts: list[ActSpec] = Field(default_factory=list)
    allow_terms: list[VocabName] = Field(default_factory=list)
    # where an allowed term excuses a hit: its clause within ``allow_reach`` words, or its sentence
    allow_scope: Literal["clause", "sentence"] = "clause"
    allow_reach: Annotated[int, Field(ge=1, le=60)] = 8
    mask_terms: list[VocabName] = Field(default_factory=list)
    question_terms: list[VocabName] = Field(default_factory=list)
    defer: bool = False


class PatternSpec(_RuleSpec):
    kind: Literal["pattern"]
    patterns: Patterns
    allow: list[Pattern] = Field(default_factory=list)


class NearSpec(_RuleSpec):
    kind: Literal["near"]
    first: Patterns
    then: Patterns
    window: Annotated[int, Field(ge=0, le=40)] = 10
    ordered: bool = False
    allow: list[Pattern] = Field(default_factory=list)


class DirectiveSpec(_RuleSpec):
    kind: Literal["directive"]
    directives: Patterns
    actions: Patterns
    fillers: list[Pattern] = Field(default_factory=list)
    negators: list[Pattern] = Field(default_factory=list)
    negated_actions: list[Pattern] = Field(default_factory=list)
    allowed_actions: list[Pattern] = Field(default_factory=list)
    objects: list[Pattern] = Field(default_factory=list)
    pronoun_objects: list[Pattern] = Field(default_factory=list)
    object_breaks: list[Pattern] = Field(default_factory=list)
    statement_fillers: list[Pattern] = Field(default_factory=list)
    allow: list[Pattern] = Field(default_factory=list)
    allow_when_negated: list[Pattern] = Field(default_factory=list)
    window: Annotated[int, Field(ge=1, le=20)] = 6


class VocabularyRuleSpec(_RuleSpec):
    kind: Literal["vocabulary"]
    allow: list[Pattern] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fires(self) -> VocabularyRuleSpec:
        if not (self.terms or self.acts):
            raise ValueError("terms: a vocabulary rule needs terms or acts")
        return self


class ModelRuleSpec(_RuleSpec):
    """A learned text screen (:mod:`bridge.roles.model`): the note is flagged when its score reaches
    ``threshold``; ``evidence`` is how many of its highest-weighted words are shown."""

    kind: Literal["model"]
    model: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-/.]+$")]
    threshold: Annotated[float, Field(gt=0.0, lt=1.0)]
    evidence: Annotated[int, Field(ge=1, le=10)] = 3


ContentSpec = Annotated[
    PatternSpec | NearSpec | DirectiveSpec | VocabularyRuleSpec | ModelRuleSpec, Field(discriminator="kind")
]


class CheckSpec(_Spec):
    severity: SeverityName
    message: Text
    enabled: bool = True
    satisfied_by: Literal["cosign", "escalation", "consent"] | None = None  # what resolves its hold


class CodingSpec(_Spec):
    system: Text
    code: Text
    display: str | None = None


class PrivacySpec(_Spec):
    notice: Text
    consent_purpose: Annotated[str, Field(pattern=r"^[A-Z]+$")] = "TREAT"
    sud_labels: Annotated[list[CodingSpec], Field(min_length=1)]
    care_team_labels: list[CodingSpec] = Field(default_factory=list)
    # vocabulary classes whose terms make a note SUD-related (Part 2), whatever its input flag says
    sud_terms: list[VocabName] = Field(default_factory=list)
    # [assignment.programs] keys whose referrals are SUD programs: their notes are Part 2 records
    sud_programs: list[str] = Field(default_factory=list)


class ItemFilterSpec(_Spec):
    """Keep an item of a repeating element (``Task.input``, ``ServiceRequest.supportingInfo``) only
    when it matches every criterion given; the element's allow-listed paths then apply to it."""

    type_system: str | None = None  # item.type.coding[].system ...
    type_codes: list[str] = Field(default_factory=list)  # ... with one of these codes
    reference_types: list[Annotated[str, Field(pattern=r"^[A-Z][A-Za-z]+$")]] = Field(
        default_factory=list
    )  # item.reference (or item.valueReference.reference) points at one of these types
    urls: list[str] = Field(default_factory=list)  # item.url (extensions)

    @model_validator(mode="after")
    def _not_empty(self) -> ItemFilterSpec:
        if not (self.type_codes or self.reference_types or self.urls):
            raise ValueError("needs type_codes, reference_types or urls")
        if bool(self.type_codes) != bool(self.type_system):
            raise ValueError("type_codes and type_system go together")
        return self


def _check_item_path(value: str) -> str:
    if not re.fullmatch(r"(Task|ServiceRequest|Patient)\.[a-z][A-Za-z0-9]*", value):
        raise ValueError("must be '<Task|ServiceRequest|Patient>.<top-level element>'")
    return value


class MinimumNecessarySpec(_Spec):
    Task: Annotated[list[FieldPath], Field(min_length=1)]
    ServiceRequest: Annotated[list[FieldPath], Field(min_length=1)]
    Patient: Annotated[list[FieldPath], Field(min_length=1)]
    supporting: dict[str, list[FieldPath]] = Field(default_factory=dict)
    items: dict[Annotated[str, AfterValidator(_check_item_path)], ItemFilterSpec] = Field(
        default_factory=dict
    )


ResourceSpec = Annotated[str, Field(pattern=r"^(\*|[A-Za-z]+(:[a-z0-9\-]+)?)$")]
ActionName = Literal["create", "read", "update", "delete", "cosign", "assign"]


class PermissionsSpec(_Spec):
    peer_roles: list[Role]
    never_write_for_peers: Annotated[list[ResourceSpec], Field(min_length=1)]
    grants: dict[Role, dict[ActionName, list[ResourceSpec]]]


class AssignmentSpec(_Spec):
    programs: dict[str, Annotated[list[Endorsement], Field(min_length=1)]]
    dual_relationship: list[Literal["address", "employer", "household", "family"]]


class BillingSpec(_Spec):
    code: Annotated[str, Field(pattern=r"^[A-Z0-9]{5}$")]
    group_modifier: Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")] | None = None
    program_modifiers: dict[str, Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]] = Field(
        default_factory=dict
    )
    unit_minutes: Annotated[int, Field(ge=1, le=60)] = 15
    partial_unit_minutes: Annotated[int, Field(ge=1, le=60)] = 8
    daily_unit_cap: Annotated[int, Field(ge=1)] | None = None
    period_unit_cap: Annotated[int, Field(ge=1)] | None = None
    period_days: Annotated[int, Field(ge=1)] | None = None
    yearly_hour_cap: Annotated[float, Field(gt=0)] | None = None
    group_size_max: Annotated[int, Field(ge=2)] | None = None
    required_fields: list[Literal[BILLING_FIELDS]]  # type: ignore[valid-type]
    not_billable_activities: list[Activity] = Field(default_factory=list)
    write_within_business_days: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _period(self) -> BillingSpec:
        if (self.period_unit_cap is None) != (self.period_days is None):
            raise ValueError("period_days: period_unit_cap and period_days go together")
        if self.partial_unit_minutes > self.unit_minutes:
            raise ValueError("partial_unit_minutes: must not exceed unit_minutes")
        return self


class SupervisionSpec(_Spec):
    cosign_levels: list[CertificationLevel]
    recency_days: dict[CertificationLevel, Annotated[int, Field(ge=1)]]


class RuleFileSpec(_Spec):
    meta: MetaSpec
    language: LanguageSpec
    vocabularies: dict[VocabName, VocabularySpec] = Field(default_factory=dict)
    content: dict[Annotated[str, Field(pattern=r"^[a-z0-9\-]+$")], ContentSpec]
    checks: dict[str, dict[str, CheckSpec]]
    privacy: PrivacySpec
    minimum_necessary: MinimumNecessarySpec
    permissions: PermissionsSpec
    assignment: AssignmentSpec
    billing: BillingSpec
    supervision: SupervisionSpec


def merge(
    base: dict[str, Any], overlay: dict[str, Any], origin: dict[tuple[str, ...], str], file: str
) -> dict[str, Any]:
    """Deep-merge ``overlay`` into a copy of ``base``; record in ``origin`` which file set each key."""
    out = dict(base)
    _merge_into(out, overlay, origin, file, ())
    return out


def _merge_into(
    out: dict[str, Any],
    overlay: dict[str, Any],
    origin: dict[tuple[str, ...], str],
    file: str,
    path: tuple[str, ...],
) -> None:
    for key, value in overlay.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = dict(out[key])
            _merge_into(out[key], value, origin, file, here)
        else:
            out[key] = value
            origin[here] = file
            if isinstance(value, dict):
                _record(value, origin, file, here)


def _record(
    value: dict[str, Any], origin: dict[tuple[str, ...], str], file: str, path: tuple[str, ...]
) -> None:
    for key, sub in value.items():
        origin[(*path, key)] = file
        if isinstance(sub, dict):
            _record(sub, origin, file, (*path, key))
