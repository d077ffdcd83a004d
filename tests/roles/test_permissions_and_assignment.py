"""Role permissions (deny by default; peers never write clinical resources) and assignment checks."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.domain import Participant, PeerWorker, Role, parse
from bridge.errors import InputError
from bridge.roles import Policy, Verdict

NEVER = [
    ("Condition", ()),
    ("ClinicalImpression", ()),
    ("DiagnosticReport", ()),
    ("MedicationRequest", ()),
    ("MedicationStatement", ()),
    ("Observation", ("laboratory",)),
    ("CarePlan", ("assess-plan",)),
    ("CarePlan", ("treatment-plan",)),
    ("CarePlan", ("recovery-plan", "assess-plan")),  # a recovery category does not launder a treatment plan
]


@pytest.mark.parametrize("role", [Role.PEER_SPECIALIST, Role.PEER_SUPERVISOR])
@pytest.mark.parametrize("action", ["create", "update", "delete"])
@pytest.mark.parametrize(("resource", "categories"), NEVER)
def test_peers_never_write_clinical_resources(
    policy: Policy, role: Role, action: str, resource: str, categories: tuple[str, ...]
) -> None:
    p = policy.permits(role, action, resource, categories)
    assert not p.allowed
    assert not p  # a Permission is falsy when refused


@pytest.mark.parametrize(
    ("role", "action", "resource", "categories", "allowed"),
    [
        ("peer-specialist", "create", "Encounter", (), True),
        ("peer-specialist", "create", "DocumentReference", (), True),
        ("peer-specialist", "create", "CarePlan", ("recovery-plan",), True),
        ("peer-specialist", "create", "CarePlan", (), False),  # a plan of unknown kind is not a recovery plan
        ("peer-specialist", "create", "Observation", ("social-history",), False),  # deny by default
        ("peer-specialist", "read", "ServiceRequest", (), True),
        ("peer-specialist", "read", "Condition", (), False),
        ("peer-specialist", "update", "Task", (), True),
        ("peer-specialist", "cosign", "note", (), False),
        ("peer-supervisor", "cosign", "note", (), True),
        ("peer-supervisor", "assign", "referral", (), True),
        ("clinician", "create", "Condition", (), True),
        ("clinician", "create", "Observation", ("laboratory",), True),
        ("care-coordinator", "create", "ServiceRequest", (), True),
        ("care-coordinator", "create", "DocumentReference", (), False),
        ("integrator", "update", "rules", (), True),
        ("integrator", "read", "Patient", (), False),
    ],
)
def test_permission_table(
    policy: Policy, role: str, action: str, resource: str, categories: tuple[str, ...], allowed: bool
) -> None:
    p = policy.permits(role, action, resource, categories)
    assert p.allowed is allowed, p
    assert p.rule.startswith("permissions.")


def test_permission_explains_itself(policy: Policy) -> None:
    p = policy.permits("peer-specialist", "create", "Condition")
    assert p.to_dict() == {
        "allowed": False,
        "rule": "permissions.never_write_for_peers",
        "reason": "peers never create Condition: it is clinical work outside peer scope of practice",
    }
    assert (
        policy.permits("peer-specialist", "create", "Encounter").rule
        == "permissions.grants.peer-specialist.create"
    )


def test_permits_resource_reads_type_and_categories(policy: Policy) -> None:
    lab = {
        "resourceType": "Observation",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
    }
    assert not policy.permits_resource("peer-specialist", "create", lab)
    plan = {"resourceType": "CarePlan", "category": [{"coding": [{"code": "recovery-plan"}]}]}
    assert policy.permits_resource("peer-specialist", "create", plan)
    with pytest.raises(InputError, match="resourceType"):
        policy.permits_resource("peer-specialist", "create", {"id": "x"})


# --- assignment ----------------------------------------------------------------------------------

ADDRESS = {"line": "12 Elm St.", "city": "Austin", "state": "TX", "postal_code": "78701"}


def peer(**changes: Any) -> PeerWorker:
    data: dict[str, Any] = {
        "id": "peer-1",
        "name": {"given": "Sam", "family": "Peer"},
        "credential": "PRSS",
        "certification_level": "certified",
        "organization_id": "harbor",
        "endorsements": ["recovery-support"],
    }
    data.update(changes)
    return parse(PeerWorker, data)


def person(**changes: Any) -> Participant:
    data: dict[str, Any] = {"id": "p-1", "name": {"given": "Dana", "family": "Example"}}
    data.update(changes)
    return parse(Participant, data)


def test_endorsement_matches_program(policy: Policy) -> None:
    ok = policy.check_assignment(peer(), person(), "recovery-support")
    assert ok.verdict is Verdict.ALLOW
    assert ok.rules_evaluated == ("assignment.endorsement", "assignment.dual-relationship")
    wrong = policy.check_assignment(peer(), person(), "mental-health")
    assert wrong.verdict is Verdict.BLOCK
    assert wrong.violations[0].message == "The mental-health program needs a mental-health endorsement."
    either = policy.check_assignment(peer(endorsements=["mental-health"]), person(), "co-occurring")
    assert either.verdict is Verdict.ALLOW
    unknown = policy.check_assignment(peer(), person(), "astrology")
    assert unknown.verdict is Verdict.BLOCK and unknown.violations[0].field == "program"


@pytest.mark.parametrize(
    ("peer_changes", "person_changes", "relationship"),
    [
        (
            {"address": ADDRESS},
            {"address": {**ADDRESS, "line": "12  elm st", "postal_code": "78701-1234"}},
            "address",
        ),
        ({"employer": "H-E-B  Grocery"}, {"employer": "h-e-b grocery"}, "employer"),
        ({"household_id": "hh-4"}, {"household_id": "hh-4"}, "household"),
        ({"family_ids": ["p-1"]}, {}, "family"),
        ({}, {"family_ids": ["peer-1"]}, "family"),
    ],
)
def test_dual_relationship_blocks(
    policy: Policy, peer_changes: dict[str, Any], person_changes: dict[str, Any], relationship: str
) -> None:
    d = policy.check_assignment(peer(**peer_changes), person(**person_changes), "recovery-support")
    assert d.verdict is Verdict.BLOCK
    assert d.rules_fired == ("assignment.dual-relationship",) and d.violations[0].field == relationship


def test_no_dual_relationship_near_misses(policy: Policy) -> None:
    d = policy.check_assignment(
        peer(address=ADDRESS, employer="H-E-B", household_id="hh-4", family_ids=["p-2"]),
        person(address={**ADDRESS, "line": "14 Elm St."}, employer="Whole Foods", household_id="hh-5"),
        "recovery-support",
    )
    assert d.verdict is Verdict.ALLOW
