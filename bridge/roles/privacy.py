"""Privacy: who may receive a note (audience + 42 CFR Part 2 consent), and the minimum-necessary
peer view of an inbound referral.

- Audience (design.md): ``peer-team`` never leaves the bridge; ``care-team`` is sent, labeled;
  ``restricted`` (Part 2) is sent only with a consent on file for that recipient, labeled, with the
  redisclosure notice of 42 CFR §2.32. A ``care-team`` note marked SUD-related carries the same
  labels and notice (DS4P: label every SUD-related resource sent out).
  Labels: HL7 DS4P, http://hl7.org/fhir/uv/security-label-ds4p (codes in ``[privacy]``).
- Minimum necessary (HIPAA §164.502(b)): a peer gets contact details, a plain-language reason,
  goals, appointments and program names; not labs, drug screens, diagnosis detail, counseling
  notes or the medication list. The view is an allow-list of FHIR element paths per resource type
  (``[minimum_necessary]``): anything not listed is dropped, so a new element in a referral is
  private until someone decides otherwise.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.domain import Audience, ConsentRecord
from bridge.roles.checks import Checks
from bridge.roles.decision import Decision, Verdict, Violation
from bridge.roles.schema import ItemFilterSpec, MinimumNecessarySpec, PrivacySpec


@dataclass(frozen=True, slots=True)
class Disclosure:
    """May this note go to this recipient, and with which labels and notice."""

    decision: Decision
    labels: tuple[dict[str, str], ...] = ()
    notice: str | None = None
    consent_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.verdict.rank <= Verdict.WARN.rank

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.decision.to_dict(),
            "allowed": self.allowed,
            "labels": [dict(c) for c in self.labels],
            "notice": self.notice,
            "consent_id": self.consent_id,
        }


def find_consent(
    consents: Sequence[ConsentRecord], participant_id: str | None, recipient: str, at: datetime, purpose: str
) -> ConsentRecord | None:
    for consent in consents:
        if participant_id is not None and consent.participant_id != participant_id:
            continue
        if consent.permits(recipient, at, purpose):
            return consent
    return None


def check_disclosure(
    *,
    audience: Audience,
    sud_related: bool,
    participant_id: str | None,
    recipient: str,
    consents: Sequence[ConsentRecord],
    at: datetime,
    spec: PrivacySpec,
    checks: Checks,
) -> Disclosure:
    violations: list[Violation] = []
    evaluated: list[str] = []
    labels: list[dict[str, str]] = []
    notice: str | None = None
    consent_id: str | None = None
    if checks.enabled("audience.peer-team"):
        evaluated.append("audience.peer-team")
        if audience is Audience.PEER_TEAM:
            violations.append(checks.violation("audience.peer-team", field="audience", recipient=recipient))
    if audience is Audience.RESTRICTED and checks.enabled("privacy.consent-required"):
        evaluated.append("privacy.consent-required")
        consent = find_consent(consents, participant_id, recipient, at, spec.consent_purpose)
        if consent is None:
            violations.append(
                checks.violation("privacy.consent-required", field="consents", recipient=recipient)
            )
        else:
            consent_id = consent.id
    if not violations:
        if audience is Audience.RESTRICTED or sud_related:
            labels.extend(c.model_dump(exclude_none=True) for c in spec.sud_labels)
            notice = spec.notice
        else:
            labels.extend(c.model_dump(exclude_none=True) for c in spec.care_team_labels)
    return Disclosure(
        decision=Decision.of(violations, evaluated),
        labels=tuple(_unique(labels)),
        notice=notice,
        consent_id=consent_id,
    )


def _unique(labels: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, str]] = []
    for label in labels:
        key = (label["system"], label["code"])
        if key not in seen:
            seen.add(key)
            out.append(label)
    return out


# --- minimum necessary -------------------------------------------------------------------------

Tree = dict[str, "Tree | None"]


def _tree(paths: Sequence[str]) -> Tree:
    root: Tree = {}
    for path in paths:
        node = root
        parts = path.split(".")
        for i, part in enumerate(parts):
            if i == len(parts) - 1:
                node[part] = None  # keep the whole element
            else:
                child = node.get(part, {})
                if child is None:  # a shorter path already keeps all of it
                    break
                node[part] = child
                node = child
    return root


def _project(value: Any, tree: Tree | None) -> Any:
    if tree is None:
        return copy.deepcopy(value)
    if isinstance(value, list):
        items = [_project(v, tree) for v in value]
        return [i for i in items if i not in (None, {}, [])]
    if isinstance(value, Mapping):
        out = {}
        for key, sub in tree.items():
            if key in value:
                kept = _project(value[key], sub)
                if kept not in (None, {}, []):
                    out[key] = kept
        return out
    return None  # a primitive where the allow-list expected structure: not what we allowed


_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def reference_type(ref: Any) -> str | None:
    """The resource type a ``Type/id`` reference (relative or absolute) points at; None for contained
    (``#x``), conditional or malformed references, which a view never follows."""
    if not isinstance(ref, str):
        return None
    match = _REF.search(ref)
    return match.group(1) if match else None


def _item_reference(item: Mapping[str, Any]) -> Any:
    if "reference" in item:
        return item.get("reference")
    value = item.get("valueReference")
    return value.get("reference") if isinstance(value, Mapping) else None


def _item_matches(item: Any, rule: ItemFilterSpec) -> bool:
    if not isinstance(item, Mapping):
        return False
    if rule.type_codes:
        codings = (item.get("type") or {}).get("coding") or []
        if not any(
            isinstance(c, Mapping)
            and c.get("system") == rule.type_system
            and c.get("code") in rule.type_codes
            for c in codings
        ):
            return False
    if rule.reference_types and reference_type(_item_reference(item)) not in rule.reference_types:
        return False
    return not rule.urls or item.get("url") in rule.urls


def _filter_items(resource: Mapping[str, Any], spec: MinimumNecessarySpec) -> Mapping[str, Any]:
    """Drop the items of repeating elements that their ``[minimum_necessary.items]`` filter refuses:
    a Task.input of a kind a peer does not need, a supportingInfo pointing at a lab result."""
    rtype = resource.get("resourceType")
    out: dict[str, Any] | None = None
    for path, rule in spec.items.items():
        owner, element = path.split(".", 1)
        if owner != rtype or not isinstance(resource.get(element), list):
            continue
        out = out if out is not None else dict(resource)
        out[element] = [item for item in resource[element] if _item_matches(item, rule)]
    return out if out is not None else resource


def fetchable_references(view: Mapping[str, Any], spec: MinimumNecessarySpec) -> list[str]:
    """References left in a reduced view (ServiceRequest.supportingInfo, its pertainsToGoal
    extensions, Task.input values) whose type has a ``[minimum_necessary.supporting]`` allow-list:
    what the exchange may read and hand back to :func:`peer_view` as ``supporting``."""
    found: list[str] = []
    sr = view.get("service_request") or {}
    task = view.get("task") or {}
    items = [*(sr.get("supportingInfo") or []), *(sr.get("extension") or []), *(task.get("input") or [])]
    for item in items:
        ref = _item_reference(item) if isinstance(item, Mapping) else None
        if reference_type(ref) in spec.supporting and ref not in found:
            found.append(str(ref))
    return found


def _view(resource: Mapping[str, Any], paths: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    kept: dict[str, Any] = _project(resource, _tree(paths)) or {}
    kept = {"resourceType": resource.get("resourceType"), **kept}
    dropped = sorted(k for k in resource if k not in kept)
    return kept, dropped


def peer_view(
    *,
    task: Mapping[str, Any],
    service_request: Mapping[str, Any],
    patient: Mapping[str, Any] | None,
    supporting: Sequence[Mapping[str, Any]],
    spec: MinimumNecessarySpec,
) -> dict[str, Any]:
    """Reduce an inbound referral to what a peer needs. Returns plain dicts (FHIR JSON shape):
    ``task``, ``service_request``, ``patient``, ``supporting`` (allowed resources, reduced),
    ``dropped`` (resources left out: type and id only) and ``dropped_elements`` (per resource type,
    the top-level elements removed) so the reduction can be explained and audited."""
    dropped_elements: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    for key, resource, paths in (
        ("task", task, spec.Task),
        ("service_request", service_request, spec.ServiceRequest),
        ("patient", patient, spec.Patient),
    ):
        if resource is None:
            out[key] = None
            continue
        kept, dropped = _view(_filter_items(resource, spec), paths)
        out[key] = kept
        if dropped:
            dropped_elements[str(resource.get("resourceType", key))] = dropped
    kept_support: list[dict[str, Any]] = []
    dropped_resources: list[dict[str, Any]] = []
    for resource in supporting:
        rtype = str(resource.get("resourceType", ""))
        allowed_paths = spec.supporting.get(rtype)
        if allowed_paths is None:
            dropped_resources.append({"resourceType": rtype, "id": resource.get("id")})
            continue
        kept, dropped = _view(resource, allowed_paths)
        kept_support.append(kept)
        if dropped:
            dropped_elements.setdefault(rtype, [])
            dropped_elements[rtype] = sorted(set(dropped_elements[rtype]) | set(dropped))
    out["supporting"] = kept_support
    out["dropped"] = dropped_resources
    out["dropped_elements"] = dropped_elements
    return out
