"""Supervision: co-sign holds and supervision recency.

Peers at the certification levels in ``cosign_levels`` (trainee, provisional) write notes that are
held until a supervisor co-signs. Supervision must be recent: Texas asks for weekly supervision
while a peer holds a provisional certification and monthly later; IC&RC asks for at least weekly.
The windows live in ``[supervision]`` of the rule files.
"""

from __future__ import annotations

from bridge.domain import Role
from bridge.roles.checks import Checks
from bridge.roles.decision import Violation
from bridge.roles.facts import NoteFacts
from bridge.roles.schema import SupervisionSpec


def check_supervision(
    facts: NoteFacts, spec: SupervisionSpec, checks: Checks
) -> tuple[list[Violation], list[str]]:
    """Judged only when the author's certification level is known (and recency only with a date)."""
    violations: list[Violation] = []
    evaluated: list[str] = []
    level = facts.certification_level
    if level is None or facts.role is not Role.PEER_SPECIALIST:
        return violations, evaluated
    if checks.enabled("supervision.cosign"):
        evaluated.append("supervision.cosign")
        if level in spec.cosign_levels and not facts.cosigned:
            violations.append(checks.violation("supervision.cosign", field="cosigned", level=level.value))
    limit = spec.recency_days.get(level)
    now = facts.now
    if (
        limit is not None
        and checks.enabled("supervision.recency")
        and facts.last_supervision is not None
        and now is not None
    ):
        evaluated.append("supervision.recency")
        days = (now.date() - facts.last_supervision).days
        if days > limit:
            violations.append(
                checks.violation("supervision.recency", field="last_supervision", days=days, limit=limit)
            )
    return violations, evaluated
