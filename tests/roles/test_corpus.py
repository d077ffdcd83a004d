"""The labeled corpus (tests/roles/corpus): the done-criteria of the engine, on the real rule files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.roles.evaluate import Report, evaluate, main

CORPUS = Path(__file__).parent / "corpus"
RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"


@pytest.fixture(scope="module")
def report() -> Report:
    return evaluate(CORPUS, RULES_DIR)


def test_corpus_is_large_and_labeled() -> None:
    files = sorted(CORPUS.glob("*.json"))
    assert len(files) >= 60
    for f in files:
        data = json.loads(f.read_text())
        assert data["expect"]["verdict"] in {"allow", "warn", "hold", "block"}, f.name
        assert data["text"].strip(), f.name


def _first_corpus(report: Report) -> Report:
    """The notes of the first landing (tuning and held-out-1..5): every one still decided as labeled."""
    return Report([o for o in report.outcomes if o.subset == "tuning" or o.subset.startswith("held-out-")])


def test_every_block_worthy_note_of_the_first_corpus_is_blocked(report: Report) -> None:
    missed = [o.file for o in _first_corpus(report).outcomes if o.expected == "block" and o.got != "block"]
    assert not missed


def _share(pair: tuple[int, int]) -> float:
    n, d = pair
    assert d > 0
    return n / d


def test_blind_batches_meet_the_targets_of_issue_11(report: Report) -> None:
    """Regression on blind-1..6 (tuned on after their first runs, which first_runs.json keeps)."""
    blind = Report([o for o in report.outcomes if o.subset.startswith("blind-")])
    assert len(blind.outcomes) >= 300
    t = blind.targets()
    assert _share(t["risk held"]) >= 0.98, t
    assert _share(t["block-worthy caught"]) >= 0.97, t
    assert _share(t["block-worthy blocked"]) >= 0.85, t
    assert _share(t["clean blocked"]) <= 0.02, t
    assert _share(t["clean held"]) <= 0.08, t


def test_frozen_batch_is_labeled_and_kept_apart() -> None:
    """The frozen batch is for reporting only: labeled, blind, and never in the tuning corpus."""
    frozen = sorted((CORPUS.parent / "corpus-frozen").glob("*.json"))
    assert len(frozen) >= 60
    names = {f.name for f in CORPUS.glob("*.json")}
    for f in frozen:
        expect = json.loads(f.read_text())["expect"]
        assert expect["set"] == "frozen-final" and expect["family"] and f.name not in names


def test_first_runs_cover_every_blind_batch() -> None:
    runs = json.loads((CORPUS.parent / "first_runs.json").read_text())["runs"]
    covered = {s for run in runs for s in run["sets"]}
    sets = {json.loads(f.read_text())["expect"].get("set") for f in CORPUS.glob("blind-*.json")}
    assert sets <= covered and "frozen-final" in covered


def test_at_most_one_clean_note_in_twenty_is_flagged(report: Report) -> None:
    flagged = [o.file for o in report.outcomes if o.expected == "allow" and o.got != "allow"]
    assert report.clean_flagged_rate <= 0.05, flagged


def test_every_hold_worthy_note_is_at_least_held(report: Report) -> None:
    missed = [o.file for o in report.outcomes if o.expected == "hold" and o.got not in {"hold", "block"}]
    assert not missed


def test_evaluate_prints_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--corpus", str(CORPUS), "--rules", str(RULES_DIR)]) == 0
    out = capsys.readouterr().out
    assert "block recall" in out and "clean notes flagged" in out and "flag precision" in out


def test_evidence_slices_the_note_and_log_dicts_carry_no_words() -> None:
    from bridge.domain import parse
    from bridge.roles import NoteFacts, load_policy

    policy = load_policy(RULES_DIR, "TX")
    checked = 0
    for f in sorted(CORPUS.glob("*.json")):
        facts = parse(NoteFacts, json.loads(f.read_text()))
        decision = policy.check_note(facts)
        for v in decision.violations:
            if v.evidence is not None:
                checked += 1
                assert facts.text[v.evidence.start : v.evidence.end] == v.evidence.text, f.name
        logged = decision.to_log_dict()
        for v in logged["violations"]:
            assert v["evidence"] is None or set(v["evidence"]) == {"start", "end"}, f.name
        assert facts.text not in json.dumps(logged)
    assert checked > 40
