"""Role permissions: which records and FHIR resource types each role may create, read, update.

Deny by default. Grants in ``[permissions.grants.<role>]`` name resource types, optionally with a
category (``CarePlan:recovery-plan``, ``Observation:laboratory``): a grant with a category only
covers resources carrying that category. ``never_write_for_peers`` is an invariant checked at load
(peers never write Condition, ClinicalImpression, DiagnosticReport, MedicationRequest,
MedicationStatement, lab Observations or a treatment-plan CarePlan), so no overlay can grant it.
Modelled on Starlette's pure ``has_required_scope``: a function of its inputs and the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.domain import Role
from bridge.roles.schema import PermissionsSpec

WRITE_ACTIONS = frozenset({"create", "update", "delete"})


@dataclass(frozen=True, slots=True)
class Permission:
    """The answer to "may this role do this": ``rule`` is the grant or invariant that decided it."""

    allowed: bool
    rule: str
    reason: str

    def __bool__(self) -> bool:
        return self.allowed

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "rule": self.rule, "reason": self.reason}


def _matches(entry: str, resource_type: str, categories: frozenset[str]) -> bool:
    if entry == "*":
        return True
    etype, _, ecat = entry.partition(":")
    if etype != resource_type:
        return False
    return not ecat or ecat in categories


def permits(
    spec: PermissionsSpec, role: Role | str, action: str, resource_type: str, categories: Iterable[str] = ()
) -> Permission:
    role = Role(role)
    cats = frozenset(categories)
    if role in spec.peer_roles and action in WRITE_ACTIONS:
        for entry in spec.never_write_for_peers:
            if _matches(entry, resource_type, cats):
                return Permission(
                    False,
                    "permissions.never_write_for_peers",
                    f"peers never {action} {entry}: it is clinical work outside peer scope of practice",
                )
    grants = spec.grants.get(role, {})
    for entry in grants.get(action, []):  # type: ignore[call-overload]
        if _matches(entry, resource_type, cats):
            return Permission(True, f"permissions.grants.{role.value}.{action}", f"granted by {entry}")
    what = resource_type + (f" ({', '.join(sorted(cats))})" if cats else "")
    return Permission(
        False, f"permissions.grants.{role.value}.{action}", f"{role.value} may not {action} {what}"
    )


def categories_of(resource: Mapping[str, Any]) -> frozenset[str]:
    """Category codes of a FHIR resource (``category`` may be one CodeableConcept or a list)."""
    raw = resource.get("category")
    concepts = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    codes: set[str] = set()
    for concept in concepts:
        for coding in concept.get("coding", []) if isinstance(concept, Mapping) else []:
            if isinstance(coding, Mapping) and isinstance(coding.get("code"), str):
                codes.add(coding["code"])
    return frozenset(codes)
