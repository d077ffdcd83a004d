"""Learn the risk screen (``config/rules/vocab/risk-screen.tsv``) from the labelled corpus.

    pip install 'peer-bridge[vocab]' && python scripts/train_text_screen.py [--exclude SET ...]

A development tool, never imported by the bridge: the service reads the written file through
:mod:`bridge.roles.model`, with no learning library. Positive notes are those labelled
``family = "risk"``; every other note (clean, near miss, out of scope) is negative. Features are
:func:`bridge.roles.model.features` of the note with idiom words left out, exactly as the rule
sees them; single function words ("it", "when") are not learned (in pairs they are: "end it").
The learner is scikit-learn's L2 logistic regression with balanced class weights, near misses
weighted 3 (the hard negatives: a leave-one-batch-out run over blind-11..20 held fewer clean notes
at the same recall with them weighted; deterministic:
lbfgs). Blind batches not yet run through the engine must be left out with
``--exclude`` until their first run is recorded (``tests/roles/first_runs.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "config" / "rules" / "vocab" / "risk-screen.tsv"
CORPUS = ROOT / "tests" / "roles" / "corpus"


def main() -> int:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    from sklearn.linear_model import LogisticRegression

    from bridge.roles.loader import load_policy
    from bridge.roles.model import features

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(CORPUS))
    ap.add_argument(
        "--exclude", nargs="*", default=[], help="corpus sets to leave out (unseen blind batches)"
    )
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    ap.add_argument(
        "--near-miss-weight",
        type=float,
        default=3.0,
        help="sample weight of near misses (clean notes that use risk or clinical words)",
    )
    ap.add_argument("--min-weight", type=float, default=0.01, help="drop features with smaller |weight|")
    ap.add_argument(
        "--mask", nargs="*", default=["idiom"], help="vocabulary classes whose words do not count"
    )
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    policy = load_policy(ROOT / "config" / "rules")
    mask = frozenset(args.mask)
    stop = frozenset(ENGLISH_STOP_WORDS) | {"s", "t", "ll", "ve", "m", "d", "re"}
    rows: list[dict[str, int]] = []
    labels: list[bool] = []
    weights: list[float] = []
    sets: Counter[str] = Counter()
    for file in sorted(Path(args.corpus).glob("*.json")):
        note = json.loads(file.read_text(encoding="utf-8"))
        subset = note["expect"].get("set", "tuning")
        if subset in args.exclude:
            continue
        analysis = policy.analyze(note["text"])
        masked = analysis.terms_of(mask)
        skip = frozenset(
            i
            for i, t in enumerate(analysis.tokens)
            if any(m.start < t.end and t.start < m.end for m in masked)
        )
        text = note["text"]
        rows.append(
            {
                name: 1
                for name, start, end in features(analysis.tokens, skip)
                # a function word alone says more about a writer's style than about risk (and makes
                # poor evidence to show); in a pair it stays ("want to", "end it")
                if not (name.startswith("u:") and text[start:end].lower() in stop)
            }
        )
        labels.append(note["expect"].get("family") == "risk")
        weights.append(args.near_miss_weight if note["expect"].get("family") == "near-miss" else 1.0)
        sets[subset] += 1
    vec = DictVectorizer()
    x = vec.fit_transform(rows)
    model = LogisticRegression(C=args.c, class_weight="balanced", max_iter=5000).fit(
        x, labels, sample_weight=weights
    )
    names = vec.get_feature_names_out()
    kept = sorted(
        ((str(n), float(w)) for n, w in zip(names, model.coef_[0], strict=True) if abs(w) >= args.min_weight),
        key=lambda nw: (-abs(nw[1]), nw[0]),
    )
    header = [
        f"# risk-of-harm screen: learned from {len(rows)} labelled peer notes ({sum(labels)} risk)"
        " of the project corpus",
        f"# sets: {', '.join(f'{s} ({n})' for s, n in sorted(sets.items()))}",
        f"# learner: scikit-learn {version('scikit-learn')} LogisticRegression(C={args.c},"
        f" class_weight=balanced, lbfgs), near misses weighted {args.near_miss_weight:g};"
        f" features: bridge.roles.model.features, idiom words masked, single stop words (scikit-learn's"
        f" English list) left out; |weight| >= {args.min_weight} kept",
        f"# written by scripts/train_text_screen.py on {dt.date.today().isoformat()}",
    ]
    lines = [*header, f"intercept\t{float(model.intercept_[0]):.4f}", *(f"{n}\t{w:.4f}" for n, w in kept)]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(kept)} features from {len(rows)} notes ({sum(labels)} risk)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
