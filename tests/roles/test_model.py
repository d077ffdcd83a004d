"""The learned text screen (bridge/roles/model.py): file format, features, scoring, the rule kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import RuleFileError
from bridge.roles.loader import load_policy
from bridge.roles.model import ModelFileError, TextScreen, features
from bridge.roles.vocabulary import tokenize

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"


def test_features_are_stems_and_pairs_within_a_sentence_each_once() -> None:
    names = [n for n, _, _ in features(tokenize("He wants to die. Die soon"))]
    assert names == [
        "u:he",
        "u:want",
        "b:he_want",
        "u:to",
        "b:want_to",
        "u:die",
        "b:to_die",
        "u:soon",
        "b:die_soon",
    ]
    assert "b:die_die" not in names  # no pair across the full stop


def test_contributions_agree_with_features_and_skip_masked_words() -> None:
    screen = TextScreen.from_lines(["intercept\t-1", "u:die\t2", "b:want_to\t1", "u:kill\t3"])
    toks = tokenize("He wants to die, my boss will kill me")
    found = screen.contributions(toks)
    assert [c.feature for c in found] == ["b:want_to", "u:die", "u:kill"]
    names = {n for n, _, _ in features(toks)}
    assert {c.feature for c in found} <= names
    kill = next(i for i, t in enumerate(toks) if t.lower == "kill")
    assert [c.feature for c in screen.contributions(toks, frozenset({kill}))] == ["b:want_to", "u:die"]
    assert screen.score(found) == pytest.approx(1 / (1 + 2.718281828459045**-5))


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        (["u:die\t1"], "no 'intercept'"),
        (["intercept\t0"], "no feature weights"),
        (["intercept\t0", "die\t1"], "starts with 'u:' or 'b:'"),
        (["intercept\t0", "u:die\tlots"], "feature<TAB>weight"),
        (["intercept\t0", "u:die\tnan"], "feature<TAB>weight"),
    ],
)
def test_a_broken_screen_file_is_refused_with_its_line(lines: list[str], reason: str) -> None:
    with pytest.raises(ModelFileError, match=reason):
        TextScreen.from_lines(lines)


def test_the_shipped_screen_names_its_source_and_loads() -> None:
    header = (RULES_DIR / "vocab" / "risk-screen.tsv").read_text().splitlines()[:4]
    assert header[0].startswith("# risk-of-harm screen: learned from")
    assert any("scikit-learn" in line for line in header)
    screen = TextScreen.load(RULES_DIR / "vocab" / "risk-screen.tsv")
    assert len(screen.weights) > 1000


def test_a_rule_file_pointing_at_a_missing_model_names_the_key(tmp_path: Path) -> None:
    src = (RULES_DIR / "default.toml").read_text()
    (tmp_path / "vocab").symlink_to(RULES_DIR / "vocab")
    (tmp_path / "default.toml").write_text(
        src.replace('model = "vocab/risk-screen.tsv"', 'model = "vocab/nope.tsv"')
    )
    with pytest.raises(RuleFileError) as err:
        load_policy(tmp_path)
    assert "content.risk-screen.model" in str(err.value)
