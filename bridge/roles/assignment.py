"""Assignment checks: may this peer serve this person in this program?

- The peer's endorsement (certification type) must match the program (Texas: mental health vs
  recovery support); ``[assignment.programs]`` maps each program to the endorsements that qualify.
- No dual relationship: same address, same employer, same household or family (either side's
  ``family_ids`` naming the other) blocks the assignment.
"""

from __future__ import annotations

from bridge.domain import Address, Participant, PeerWorker
from bridge.roles.checks import Checks
from bridge.roles.decision import Decision, Violation
from bridge.roles.schema import AssignmentSpec


def _same_address(a: Address | None, b: Address | None) -> bool:
    if a is None or b is None:
        return False

    def norm(x: Address) -> tuple[str, str, str]:
        return (
            " ".join(x.line.lower().replace(".", "").replace(",", "").split()),
            x.city.lower(),
            x.postal_code[:5],
        )

    return norm(a) == norm(b)


def _same_text(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and " ".join(a.lower().split()) == " ".join(b.lower().split())


def dual_relationships(peer: PeerWorker, participant: Participant, tests: list[str]) -> list[str]:
    found: list[str] = []
    if "address" in tests and _same_address(peer.address, participant.address):
        found.append("address")
    if "employer" in tests and _same_text(peer.employer, participant.employer):
        found.append("employer")
    if (
        "household" in tests
        and peer.household_id is not None
        and peer.household_id == participant.household_id
    ):
        found.append("household")
    if "family" in tests and (participant.id in peer.family_ids or peer.id in participant.family_ids):
        found.append("family")
    return found


def check_assignment(
    peer: PeerWorker, participant: Participant, program: str | None, spec: AssignmentSpec, checks: Checks
) -> Decision:
    """``program`` None: no program is known (a session without a referral), so the endorsement
    is not judged; dual relationships always are."""
    violations: list[Violation] = []
    evaluated: list[str] = []
    if program is not None and checks.enabled("assignment.endorsement"):
        evaluated.append("assignment.endorsement")
        required = spec.programs.get(program)
        if required is None:
            # an unknown program cannot be matched to an endorsement: refuse rather than guess
            violations.append(
                checks.violation(
                    "assignment.endorsement", field="program", program=program, required="(unknown program)"
                )
            )
        elif not set(required) & set(peer.endorsements):
            violations.append(
                checks.violation(
                    "assignment.endorsement",
                    field="endorsements",
                    program=program,
                    required=" or ".join(e.value for e in required),
                )
            )
    if checks.enabled("assignment.dual-relationship"):
        evaluated.append("assignment.dual-relationship")
        for relation in dual_relationships(peer, participant, list(spec.dual_relationship)):
            violations.append(
                checks.violation("assignment.dual-relationship", field=relation, relationship=relation)
            )
    return Decision.of(violations, evaluated)
