"""Notes checked per second by the policy engine, and the ratio to one plain regex scan of the same notes.

    .venv/bin/python bench/roles.py [--notes 2000] [--repeat 5] [--jurisdiction TX]

The notes are the texts of the labeled corpus (tests/roles/corpus), repeated to ``--notes``.
Three ways to look at them, in the same run:

- baseline, one regex scan: every content-rule pattern of the rule files joined into one compiled
  alternation, ``findall`` over each note (no contexts, no allowed forms: what a naive filter does);
- engine, text only: ``Policy.check_note(NoteFacts(text=...))`` (segmentation, negation/reported/quote
  scopes, all content rules, a Decision per note);
- engine, full facts: the corpus inputs as given (audience, billing, supervision where present), with
  the pydantic validation of the input included, as ``bridge rules check`` and the web dry run pay it.

Each figure is the median of ``--repeat`` rounds; ratios are engine time / baseline time.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.roles import NoteFacts, load_policy
from bridge.roles.content import DirectiveRule, NearRule, PatternRule

ROOT = Path(__file__).resolve().parents[1]


def one_regex(policy: Any) -> re.Pattern[str]:
    """Every pattern of every content rule, as one case-insensitive alternation."""
    parts: list[str] = []
    for rule in policy.content:
        if isinstance(rule, PatternRule):
            pats = list(rule.patterns)
        elif isinstance(rule, NearRule):
            pats = [*rule.first, *rule.then]
        elif isinstance(rule, DirectiveRule):
            pats = [*rule.directives]
        else:  # pragma: no cover - the engine has three kinds
            raise TypeError(rule)
        parts.extend(f"(?:{p.pattern})" for p in pats)
    return re.compile("|".join(parts), re.IGNORECASE)


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--notes", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--jurisdiction", default="TX")
    ap.add_argument("--corpus", default=str(ROOT / "tests" / "roles" / "corpus"))
    args = ap.parse_args()

    policy = load_policy(ROOT / "config" / "rules", args.jurisdiction)
    inputs = [json.loads(f.read_text()) for f in sorted(Path(args.corpus).glob("*.json"))]
    for data in inputs:
        data.pop("expect", None)
    inputs = (inputs * (args.notes // len(inputs) + 1))[: args.notes]
    texts = [d["text"] for d in inputs]
    pattern = one_regex(policy)
    chars = sum(len(t) for t in texts)

    def baseline() -> None:
        for t in texts:
            pattern.findall(t)

    def engine_text() -> None:
        for t in texts:
            policy.check_note(NoteFacts(text=t))

    def engine_full() -> None:
        for d in inputs:
            policy.check_note(NoteFacts.model_validate(d))

    base = timed(baseline, args.repeat)
    text_only = timed(engine_text, args.repeat)
    full = timed(engine_full, args.repeat)
    n = len(texts)
    print(
        f"{n} notes ({chars / n:.0f} characters on average), rules: default + {args.jurisdiction}, "
        f"{len(policy.content)} content rules, median of {args.repeat}"
    )
    print(f"{'':34}{'notes/s':>10}{'ms/note':>10}{'x baseline':>12}")
    for name, secs in (
        ("baseline: one regex scan", base),
        ("engine: text only", text_only),
        ("engine: full facts (validated)", full),
    ):
        print(f"{name:34}{n / secs:>10,.0f}{1000 * secs / n:>10.3f}{secs / base:>12.1f}")


if __name__ == "__main__":
    main()
