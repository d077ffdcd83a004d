"""The fixed checks (billing, supervision, privacy, assignment): logic in code, wording as data.

Each check id has a severity and a message template in ``[checks]`` of the rule files. The
placeholders a template may use are listed here and checked at load, so a typo in a rule file is
a load error rather than a crash on the first note.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.roles.decision import Evidence, Severity, Violation
from bridge.roles.schema import CheckSpec

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "audience.peer-team": frozenset({"recipient"}),
    "privacy.consent-required": frozenset({"recipient"}),
    "billing.missing-field": frozenset({"field"}),
    "billing.zero-units": frozenset({"minutes", "partial"}),
    "billing.daily-cap": frozenset({"cap", "units", "billable"}),
    "billing.period-cap": frozenset({"cap", "days", "units", "billable"}),
    "billing.yearly-cap": frozenset({"cap", "units", "billable"}),
    "billing.group-size": frozenset({"size", "cap"}),
    "billing.not-billable": frozenset({"activities"}),
    "billing.late-note": frozenset({"days", "limit"}),
    "supervision.cosign": frozenset({"level"}),
    "supervision.recency": frozenset({"days", "limit"}),
    "assignment.endorsement": frozenset({"program", "required"}),
    "assignment.dual-relationship": frozenset({"relationship"}),
    "escalation.crisis-note": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Checks:
    specs: dict[str, CheckSpec]

    def enabled(self, check_id: str) -> bool:
        return self.specs[check_id].enabled

    def violation(
        self,
        check_id: str,
        *,
        field: str | None = None,
        evidence: Evidence | None = None,
        **values: object,
    ) -> Violation:
        spec = self.specs[check_id]
        return Violation(
            rule=check_id,
            severity=Severity(spec.severity),
            message=spec.message.format(field=field, **values),
            evidence=evidence,
            field=field,
        )
