"""``bridge rules check``: through ``bridge.cli.main``, real files, real rule files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import main

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, *args: str) -> tuple[int, str, str]:
    file = tmp_path / "note.json"
    file.write_text(data if isinstance(data, str) else json.dumps(data))
    code = main(["rules", "check", str(file), "--rules", str(RULES_DIR), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_output_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "Met at the center. Told her to cut her dose to 8 mg."
    code, out, _ = run(
        tmp_path,
        capsys,
        {"role": "peer-specialist", "text": text, "audience": "care-team", "kind": "progress"},
        "--json",
    )
    assert code == 0  # whatever the verdict
    d = json.loads(out)
    assert d["verdict"] == "block"
    assert d["violations"] == [
        {
            "rule": "content.medication-change",
            "severity": "block",
            "message": d["violations"][0]["message"],
            "evidence": {
                "text": "Told her to cut her dose to 8 mg",
                "start": 19,
                "end": 51,
                "terms": ["advice:told", "med-change:cut", "medication-generic:dose"],
            },
        }
    ]


def test_text_output_names_rule_words_and_offsets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(tmp_path, capsys, {"text": "She said she wants to die."})
    assert code == 0
    assert out.splitlines()[0] == "verdict: hold  (rules: default)"
    assert '"wants to die" (characters 13-25)' in out and "content.risk-of-harm" in out


def test_escalation_recorded_releases_the_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        tmp_path, capsys, {"text": "She said she wants to die.", "escalation_ref": "Task/e-1"}, "--json"
    )
    assert code == 0
    assert json.loads(out)["verdict"] == "allow" and json.loads(out)["satisfied"] == ["content.risk-of-harm"]


def test_jurisdiction_and_billing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = {
        "text": "Recovery coaching on routines.",
        "billable": True,
        "participant_id": "p-1",
        "service_type": "recovery-coaching",
        "start": "2026-03-03T14:00:00-06:00",
        "end": "2026-03-03T14:31:00-06:00",
        "location": "Center",
        "modality": "individual",
        "method": "phone",
        "summary": "Routines",
        "signer": "peer-1",
        "credential": "CPRS",
    }
    code, out, _ = run(tmp_path, capsys, data, "--json")
    assert code == 0 and json.loads(out)["verdict"] == "allow" and json.loads(out)["billing"]["units"] == 2
    code, out, _ = run(tmp_path, capsys, data, "--json", "--jurisdiction", "TX")
    d = json.loads(out)
    assert d["verdict"] == "block" and {v["field"] for v in d["violations"]} == {"goal", "progress"}
    code, out, _ = run(tmp_path, capsys, data, "--jurisdiction", "TX")
    assert "billing: H0038, 31 min, 2 units, 2 billable" in out and "field: goal" in out


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "file: not valid JSON"),
        ("[1, 2]", "file: must hold a JSON object"),
        ({"text": ""}, "text: String should have at least 1 character"),
        ({"text": "ok", "audience": "everyone"}, "audience: Input should be"),
        ({"text": "ok", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any, message: str
) -> None:
    code, out, err = run(tmp_path, capsys, data)
    assert code == 2 and out == ""
    assert err.startswith("bridge rules: error [invalid_input] ") and message in err


def test_unreadable_file_and_broken_rules_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(tmp_path / "missing.json"), "--rules", str(RULES_DIR)]) == 2
    assert "cannot read" in capsys.readouterr().err
    code, _, err = run(tmp_path, capsys, {"text": "ok"}, "--jurisdiction", "ZZ")
    assert code == 2 and "[rule_file_invalid]" in err and "zz.toml" in err


def test_rules_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "list", "--rules", str(RULES_DIR), "--jurisdiction", "TX", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["jurisdiction"] == "TX" and d["files"][-1].endswith("tx.toml")
    rules = {r["rule"]: r for r in d["rules"]}
    assert (
        rules["content.medication-change"]["severity"] == "block"
        and rules["content.medication-change"]["why"]
    )
    assert rules["billing.period-cap"]["kind"] == "check"
    assert main(["rules", "list", "--rules", str(RULES_DIR)]) == 0
    assert "[hold ] content.risk-of-harm (pattern)" in capsys.readouterr().out


def test_json_nested_past_the_parser_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)  # was a RecursionError traceback
    assert main(["rules", "check", str(deep)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
