"""What the policy engine answers: a verdict, the violations that decided it, the rules it evaluated.

Verdicts are ordered ``allow < warn < hold < block``; a decision's verdict is the most severe
violation's severity (``allow`` when nothing fired):

- ``warn``  the work goes out; the peer is told something worth fixing next time.
- ``hold``  the work is kept but not finalized/sent until something happens (a co-sign, an
            escalation, a consent on file).
- ``block`` the work is refused as written; the peer must change it.

Evidence carries the words of the note (PHI): return it to the author, never log it. Use
:meth:`Decision.to_log_dict` for logs and audit records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bridge.errors import ConsentRequiredError, PolicyError, ScopeViolationError


class Severity(StrEnum):
    WARN = "warn"
    HOLD = "hold"
    BLOCK = "block"


class Verdict(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    HOLD = "hold"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Verdict.ALLOW: 0, Verdict.WARN: 1, Verdict.HOLD: 2, Verdict.BLOCK: 3}


@dataclass(frozen=True, slots=True)
class Evidence:
    """The words that fired a rule and their offsets in the note text (``text[start:end]``).

    Offsets count Unicode code points (Python string indices), not UTF-16 units or bytes."""

    text: str
    start: int
    end: int
    # the vocabulary entries that matched, as "class:entry" ("medication:quetiapine"), when any did
    terms: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end}
        if self.terms:
            d["terms"] = list(self.terms)
        return d


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule that fired. ``field`` names the input field for rules about facts, not words."""

    rule: str
    severity: Severity
    message: str
    evidence: Evidence | None = None
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "evidence": self.evidence.to_dict() if self.evidence else None,
        }
        if self.field is not None:
            d["field"] = self.field
        return d


def verdict_of(violations: tuple[Violation, ...] | list[Violation]) -> Verdict:
    worst = Verdict.ALLOW
    for v in violations:
        candidate = Verdict(v.severity.value)
        if candidate.rank > worst.rank:
            worst = candidate
    return worst


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer. ``satisfied`` lists rules whose condition was met but already handled
    (e.g. risk-of-harm language with an escalation on file), so the peer sees why nothing fired.
    ``billing`` (code, modifiers, units) is set when billing was judged; ``disclosure`` (allowed,
    labels, notice, consent_id) when a recipient was named."""

    verdict: Verdict
    violations: tuple[Violation, ...] = ()
    rules_evaluated: tuple[str, ...] = ()
    satisfied: tuple[str, ...] = ()
    billing: dict[str, Any] | None = None
    disclosure: dict[str, Any] | None = None

    @classmethod
    def of(
        cls,
        violations: list[Violation] | tuple[Violation, ...],
        evaluated: list[str] | tuple[str, ...],
        satisfied: list[str] | tuple[str, ...] = (),
        billing: dict[str, Any] | None = None,
        disclosure: dict[str, Any] | None = None,
    ) -> Decision:
        ordered = sorted(violations, key=lambda v: (-Verdict(v.severity.value).rank, _start(v), v.rule))
        return cls(
            verdict=verdict_of(ordered),
            violations=tuple(ordered),
            rules_evaluated=tuple(dict.fromkeys(evaluated)),
            satisfied=tuple(dict.fromkeys(satisfied)),
            billing=billing,
            disclosure=disclosure,
        )

    @property
    def rules_fired(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.rule for v in self.violations))

    @property
    def allowed(self) -> bool:
        """True when the work may go out now (``allow`` or ``warn``)."""
        return self.verdict.rank <= Verdict.WARN.rank

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "verdict": self.verdict.value,
            "violations": [v.to_dict() for v in self.violations],
            "rules_fired": list(self.rules_fired),
            "rules_evaluated": list(self.rules_evaluated),
        }
        if self.satisfied:
            d["satisfied"] = list(self.satisfied)
        if self.billing is not None:
            d["billing"] = self.billing
        if self.disclosure is not None:
            d["disclosure"] = self.disclosure
        return d

    def to_log_dict(self) -> dict[str, Any]:
        """Like :meth:`to_dict` without the note's words (evidence keeps only offsets)."""
        d = self.to_dict()
        for v in d["violations"]:
            if v["evidence"] is not None:
                v["evidence"] = {"start": v["evidence"]["start"], "end": v["evidence"]["end"]}
        return d

    def raise_for_verdict(self, *, holds: bool = False, when: str = "") -> None:
        """The one way a verdict becomes an error. Raise on ``block`` (and on ``hold`` too with
        ``holds``, for callers that refuse what they cannot keep); return quietly otherwise.

        Only a missing consent: :class:`ConsentRequiredError`; only privacy or audience rules (or a
        hold): :class:`PolicyError`; else :class:`ScopeViolationError`. ``when`` ends the message
        (e.g. ``"at delivery time"``)."""
        if self.verdict is not Verdict.BLOCK and not (holds and self.verdict is Verdict.HOLD):
            return
        severity = Severity(self.verdict.value)
        deciding = [v.to_dict() for v in self.violations if v.severity is severity]
        rules = sorted({v["rule"] for v in deciding})
        suffix = f" {when}" if when else ""
        if rules == ["privacy.consent-required"]:
            raise ConsentRequiredError(
                f"no 42 CFR Part 2 consent on file for this recipient{suffix}", deciding
            )
        if severity is Severity.HOLD:
            raise PolicyError(f"held by policy until resolved{suffix}: {', '.join(rules)}", deciding)
        if all(r.startswith(("privacy.", "audience.")) for r in rules):
            raise PolicyError(f"refused by policy{suffix}: {', '.join(rules)}", deciding)
        raise ScopeViolationError(f"out of peer scope of practice{suffix}: {', '.join(rules)}", deciding)


def _start(v: Violation) -> int:
    return v.evidence.start if v.evidence else -1
