"""Precision and recall of the policy engine on a labeled corpus of peer notes.

    python -m bridge.roles.evaluate [--corpus DIR ...] [--rules config/rules] [--first-runs FILE] [-v]

Each corpus file is a ``bridge rules check`` input with its label under ``expect``:
``{"verdict": "allow|warn|hold|block", "family": "...", "set": "...", "rules": [...], "why": "..."}``.
``set`` names the batch (``tuning`` by default). Blind batches (``blind-N``, ``frozen-final``) were
written by authors who never saw the rules and labeled before the engine saw them; the verdicts of
the first run of an engine on each are kept in ``tests/roles/first_runs.json`` and reported beside
the current ones. ``family`` is diagnosis, medication, results, therapy, risk, clean or near-miss
(older notes without one get it from their expected rules).

Figures (the issue's targets in brackets):
- block-worthy (diagnosis, medication, results, therapy) caught = held or blocked [>= 97%], blocked [>= 85%];
- risk of harm held (or blocked) [>= 98%];
- clean notes (clean and near-miss) blocked [<= 2%] and held [<= 8%];
- per family: share caught (flagged for block-worthy and risk, passed for clean).
Prints file names and rule ids only, never note text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.domain import parse
from bridge.roles.decision import Verdict
from bridge.roles.facts import NoteFacts
from bridge.roles.loader import load_policy
from bridge.roles.policy import Policy

VERDICTS = [v.value for v in Verdict]
BLOCK_FAMILIES = ("diagnosis", "medication", "results", "therapy")
CLEAN_FAMILIES = ("clean", "near-miss")
FAMILIES = (*BLOCK_FAMILIES, "risk", *CLEAN_FAMILIES, "other")
_RULE_FAMILY = {
    "content.diagnosis-code": "diagnosis",
    "content.diagnostic-language": "diagnosis",
    "content.clinical-assessment": "diagnosis",
    "content.mental-status": "diagnosis",
    "content.medication-change": "medication",
    "content.medication-opinion": "medication",
    "content.screen-interpretation": "results",
    "content.therapy-claim": "therapy",
    "content.risk-of-harm": "risk",
}
DEFAULT_FIRST_RUNS = Path("tests/roles/first_runs.json")


@dataclass
class Outcome:
    file: str
    subset: str
    family: str
    expected: str
    got: str
    expected_rules: list[str]
    fired: list[str]

    @property
    def rules_ok(self) -> bool:
        return set(self.expected_rules) <= set(self.fired)


def family_of(expect: dict[str, object]) -> str:
    fam = expect.get("family")
    if isinstance(fam, str) and fam in FAMILIES:
        return fam
    verdict = expect.get("verdict")
    if verdict == "allow":
        return "clean"
    if verdict not in ("block", "hold"):
        return "other"  # a warning is neither caught nor missed
    rules = expect.get("rules")
    for rule in rules if isinstance(rules, list) else []:
        if rule in _RULE_FAMILY:
            return _RULE_FAMILY[rule]
    return "other"


def _rate(n: int, d: int) -> str:
    return f"{n}/{d} ({n / d:.0%})" if d else "-"


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, expected: set[str], got: set[str]) -> int:
        return sum(1 for o in self.outcomes if o.expected in expected and o.got in got)

    def _fam(self, families: Iterable[str], got: set[str]) -> tuple[int, int]:
        fams = set(families)
        chosen = [o for o in self.outcomes if o.family in fams]
        return sum(o.got in got for o in chosen), len(chosen)

    @property
    def flagged_labels(self) -> set[str]:
        return {"warn", "hold", "block"}

    @property
    def block_recall(self) -> float:
        total = self.count({"block"}, set(VERDICTS))
        return self.count({"block"}, {"block"}) / total if total else 1.0

    @property
    def clean_flagged_rate(self) -> float:
        total = self.count({"allow"}, set(VERDICTS))
        return self.count({"allow"}, self.flagged_labels) / total if total else 0.0

    @property
    def flag_precision(self) -> float:
        flagged = self.count(set(VERDICTS), self.flagged_labels)
        return self.count(self.flagged_labels, self.flagged_labels) / flagged if flagged else 1.0

    @property
    def flag_recall(self) -> float:
        should = self.count(self.flagged_labels, set(VERDICTS))
        return self.count(self.flagged_labels, self.flagged_labels) / should if should else 1.0

    @property
    def accuracy(self) -> float:
        return sum(o.expected == o.got for o in self.outcomes) / len(self.outcomes) if self.outcomes else 1.0

    @property
    def rule_agreement(self) -> float:
        return sum(o.rules_ok for o in self.outcomes) / len(self.outcomes) if self.outcomes else 1.0

    def targets(self) -> dict[str, tuple[int, int]]:
        """The issue's target figures as (numerator, denominator)."""
        return {
            "block-worthy caught": self._fam(BLOCK_FAMILIES, {"hold", "block"}),
            "block-worthy blocked": self._fam(BLOCK_FAMILIES, {"block"}),
            "risk held": self._fam(("risk",), {"hold", "block"}),
            "clean blocked": self._fam(CLEAN_FAMILIES, {"block"}),
            "clean held": self._fam(CLEAN_FAMILIES, {"hold"}),
        }

    def target_line(self) -> str:
        return "   ".join(f"{k} {_rate(*v)}" for k, v in self.targets().items())

    def family_line(self) -> str:
        parts = []
        for fam in FAMILIES:
            good = {"allow", "warn"} if fam in CLEAN_FAMILIES else {"hold", "block"}
            n, d = self._fam((fam,), good)
            if d:
                parts.append(f"{fam} {_rate(n, d)}")
        return "per family (caught, or passed for clean): " + ", ".join(parts)

    def summary(self) -> str:
        n = len(self.outcomes)
        labels = Counter(o.expected for o in self.outcomes)
        lines = [
            f"corpus: {n} notes ({', '.join(f'{labels[v]} {v}' for v in VERDICTS)})",
            f"block recall (block-worthy notes blocked): {self.block_recall:.1%}"
            f" ({self.count({'block'}, {'block'})}/{labels['block']})",
            f"clean notes flagged: {self.clean_flagged_rate:.1%}"
            f" ({self.count({'allow'}, self.flagged_labels)}/{labels['allow']}; target <= 5%)",
            f"flag precision: {self.flag_precision:.1%}   flag recall: {self.flag_recall:.1%}",
            f"exact verdict accuracy: {self.accuracy:.1%}   expected rules fired: {self.rule_agreement:.1%}",
            self.target_line(),
            self.family_line(),
            "confusion (rows expected, columns got):",
            "          " + "".join(f"{v:>7}" for v in VERDICTS),
        ]
        for e in VERDICTS:
            lines.append(f"  {e:<8}" + "".join(f"{self.count({e}, {g}):>7}" for g in VERDICTS))
        return "\n".join(lines)

    def by_set(self) -> dict[str, Report]:
        sets: dict[str, Report] = defaultdict(Report)
        for o in self.outcomes:
            sets[o.subset].outcomes.append(o)
        return dict(sorted(sets.items()))

    def mismatches(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.expected != o.got or not o.rules_ok]


def _files(corpus_dirs: Sequence[str | Path]) -> list[Path]:
    return [f for d in corpus_dirs for f in sorted(Path(d).glob("*.json"))]


def evaluate(corpus_dir: str | Path | Sequence[str | Path], rules_dir: str | Path) -> Report:
    dirs = [corpus_dir] if isinstance(corpus_dir, (str, Path)) else list(corpus_dir)
    policies: dict[str | None, Policy] = {}
    report = Report()
    for file in _files(dirs):
        data = json.loads(file.read_text(encoding="utf-8"))
        facts = parse(NoteFacts, data)
        expect = facts.expect or {}
        jurisdiction = expect.get("jurisdiction")
        if jurisdiction not in policies:
            policies[jurisdiction] = load_policy(rules_dir, jurisdiction)
        decision = policies[jurisdiction].check_note(facts)
        report.outcomes.append(
            Outcome(
                file=file.name,
                subset=str(expect.get("set", "tuning")),
                family=family_of(expect),
                expected=str(expect.get("verdict")),
                got=decision.verdict.value,
                expected_rules=list(expect.get("rules", [])),
                fired=list(decision.rules_fired),
            )
        )
    return report


def recorded(report: Report, first_runs: Path) -> list[tuple[str, str, Report]]:
    """(run name, engine, report of that run's recorded verdicts on today's labels) per recorded run."""
    if not first_runs.is_file():
        return []
    doc = json.loads(first_runs.read_text(encoding="utf-8"))
    by_file = {o.file: o for o in report.outcomes}
    out = []
    for run in doc["runs"]:
        verdicts: dict[str, str] = run["verdicts"]
        past = Report(
            [
                Outcome(o.file, o.subset, o.family, o.expected, verdicts[o.file], o.expected_rules, [])
                for f, o in by_file.items()
                if f in verdicts
            ]
        )
        if past.outcomes:
            out.append((str(run["name"]), str(run["engine"]), past))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bridge.roles.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--corpus", action="append", help="corpus folder (repeatable; default tests/roles/corpus)"
    )
    ap.add_argument("--rules", default="config/rules")
    ap.add_argument("--first-runs", default=str(DEFAULT_FIRST_RUNS), help="recorded first-run verdicts")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every mismatch")
    args = ap.parse_args(argv)
    report = evaluate(args.corpus or ["tests/roles/corpus"], args.rules)
    print(report.summary())
    sets = report.by_set()
    if len(sets) > 1:
        print("\ncurrent, per batch:")
        for name, part in sets.items():
            print(f"  [{name}] {len(part.outcomes)} notes: {part.target_line()}")
    for name, engine, past in recorded(report, Path(args.first_runs)):
        print(f"\nfirst run recorded: {name} ({engine}), per batch:")
        for set_name, part in past.by_set().items():
            print(f"  [{set_name}] {len(part.outcomes)} notes: {part.target_line()}")
        print(f"  all: {past.target_line()}")
        print(f"  {past.family_line()}")
    misses = report.mismatches()
    if misses:
        print(f"\nmismatches ({len(misses)}):")
        for o in misses if args.verbose else misses[:10]:
            print(f"  {o.file}: expected {o.expected} {o.expected_rules}, got {o.got} {o.fired}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
