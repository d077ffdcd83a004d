"""Precision and recall of the policy engine on a labeled corpus of peer notes.

    python -m bridge.roles.evaluate [--corpus tests/roles/corpus] [--rules config/rules] [-v]

Each corpus file is a ``bridge rules check`` input with its label under ``expect``:
``{"verdict": "allow|warn|hold|block", "rules": [...], "jurisdiction": "TX"?, "set": "...", "why": "..."}``.
``set`` names the batch (``tuning`` by default; held-out batches were labeled before the engine
saw them, and their first-run figures are kept in the README).

Reported figures ("flagged" means any verdict other than allow):
- block recall: share of block-worthy notes the engine blocks (the target is all of them);
- flag precision / recall: of the notes flagged, how many should be; of those that should be, how many are;
- clean notes flagged: share of notes labeled allow that got any other verdict (target <= 1 in 20);
- exact verdict accuracy and the confusion matrix;
- rule agreement: notes whose expected rules all fired.
Prints file names and rule ids only, never note text.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.domain import parse
from bridge.roles.decision import Verdict
from bridge.roles.facts import NoteFacts
from bridge.roles.loader import load_policy
from bridge.roles.policy import Policy

VERDICTS = [v.value for v in Verdict]


@dataclass
class Outcome:
    file: str
    subset: str
    expected: str
    got: str
    expected_rules: list[str]
    fired: list[str]

    @property
    def rules_ok(self) -> bool:
        return set(self.expected_rules) <= set(self.fired)


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, expected: set[str], got: set[str]) -> int:
        return sum(1 for o in self.outcomes if o.expected in expected and o.got in got)

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
            "confusion (rows expected, columns got):",
            "          " + "".join(f"{v:>7}" for v in VERDICTS),
        ]
        for e in VERDICTS:
            lines.append(f"  {e:<8}" + "".join(f"{self.count({e}, {g}):>7}" for g in VERDICTS))
        return "\n".join(lines)

    def mismatches(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.expected != o.got or not o.rules_ok]


def evaluate(corpus_dir: str | Path, rules_dir: str | Path) -> Report:
    policies: dict[str | None, Policy] = {}
    report = Report()
    for file in sorted(Path(corpus_dir).glob("*.json")):
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
                expected=str(expect.get("verdict")),
                got=decision.verdict.value,
                expected_rules=list(expect.get("rules", [])),
                fired=list(decision.rules_fired),
            )
        )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bridge.roles.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="tests/roles/corpus")
    ap.add_argument("--rules", default="config/rules")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every mismatch")
    args = ap.parse_args(argv)
    report = evaluate(args.corpus, args.rules)
    print(report.summary())
    subsets = sorted({o.subset for o in report.outcomes})
    if len(subsets) > 1:
        for name in subsets:
            part = Report([o for o in report.outcomes if o.subset == name])
            print(f"\n[{name}]")
            print("\n".join(part.summary().splitlines()[:5]))
    misses = report.mismatches()
    if misses:
        print(f"mismatches ({len(misses)}):")
        for o in misses if args.verbose else misses[:10]:
            print(f"  {o.file}: expected {o.expected} {o.expected_rules}, got {o.got} {o.fired}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
