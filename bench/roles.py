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

Then the figures issue 11 sets, in the same run:

- short notes: every corpus text cut to about 140 characters (at a word), checked text-only in this
  one process (so per core), notes/s [target >= 2,000];
- long notes: corpus texts joined to about 2,000 characters, each check timed on its own: p50 and
  p99 in ms [target p99 <= 10 ms] (the page checks as the peer types);
- vocabulary load: ``load_policy`` in a fresh interpreter (files read, vocabularies compiled), in
  seconds, beside the same interpreter's start-up and imports alone [target <= 2 s].

Each figure is the median of ``--repeat`` rounds; ratios are engine time / baseline time.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.roles import NoteFacts, load_policy
from bridge.roles.content import DirectiveRule, ModelRule, NearRule, PatternRule, VocabularyRule

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
        elif isinstance(rule, VocabularyRule | ModelRule):
            pats = [*rule.allow]  # vocabulary and model rules have no patterns of their own
        else:  # pragma: no cover - the engine has five kinds
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
    issue_targets(policy, texts, pattern, args.repeat)


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[:size].rsplit(" ", 1)[0]


def _long_notes(texts: list[str], size: int, count: int) -> list[str]:
    out: list[str] = []
    pool = iter(texts * (count * size // max(sum(map(len, texts)), 1) + 2))
    while len(out) < count:
        note = ""
        while len(note) < size:
            note += next(pool) + " "
        out.append(note[:size])
    return out


def issue_targets(policy: Any, texts: list[str], pattern: re.Pattern[str], repeat: int) -> None:
    short = [_cut(t, 140) for t in texts]
    short_secs = timed(lambda: [policy.check_text(t) for t in short], repeat)
    short_base = timed(lambda: [pattern.findall(t) for t in short], repeat)
    print(
        f"\nshort notes ({statistics.mean(map(len, short)):.0f} chars): "
        f"{len(short) / short_secs:,.0f} notes/s "
        f"in one process [target >= 2,000]; {short_secs / short_base:.1f}x one regex scan"
    )
    long_notes = _long_notes(texts, 2000, 300)
    for t in long_notes[:20]:
        policy.check_text(t)  # warm the stem cache as a running service has it
    lat = []
    for t in long_notes:
        t0 = time.perf_counter()
        policy.check_text(t)
        lat.append(1000 * (time.perf_counter() - t0))
    lat.sort()
    base = timed(lambda: [pattern.findall(t) for t in long_notes], repeat) * 1000 / len(long_notes)
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
    print(
        f"long notes (2,000 chars, {len(lat)} timed one by one): p50 {p50:.2f} ms, p99 {p99:.2f} ms "
        f"[target p99 <= 10 ms]; p50 {p50 / base:.1f}x one regex scan ({base:.2f} ms)"
    )
    rules = str(ROOT / "config" / "rules")
    cold = _subprocess_seconds(
        f"import time; t = time.perf_counter(); from bridge.roles import load_policy; "
        f"load_policy({rules!r}); print(time.perf_counter() - t)"
    )
    bare = _subprocess_seconds(
        "import time; t = time.perf_counter(); from bridge.roles import load_policy; "
        "print(time.perf_counter() - t)"
    )
    print(
        f"vocabulary load (fresh interpreter, load_policy): {cold - bare:.2f} s [target <= 2 s]; "
        f"imports alone {bare:.2f} s"
    )


def _subprocess_seconds(code: str) -> float:
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    return statistics.median(runs)


if __name__ == "__main__":
    main()
