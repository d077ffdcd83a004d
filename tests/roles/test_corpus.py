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


def test_every_block_worthy_note_is_blocked(report: Report) -> None:
    missed = [o.file for o in report.outcomes if o.expected == "block" and o.got != "block"]
    assert not missed


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
