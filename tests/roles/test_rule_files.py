"""Loading rule files: the real ones load; broken ones fail naming the file, the key and the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bridge.errors import RuleFileError
from bridge.roles import load_policy

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"
JURISDICTIONS = ("TX", "VA", "NJ", "MN")

GOOD_RULE = """
[content.extra]
kind = "pattern"
severity = "warn"
message = "m"
roles = ["peer-specialist"]
patterns = ['\\bfoo\\b']
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """A copy of the real default rule file, to add a broken overlay ``xx.toml`` next to it."""
    shutil.copy(RULES_DIR / "default.toml", tmp_path / "default.toml")
    shutil.copytree(RULES_DIR / "vocab", tmp_path / "vocab")
    return tmp_path


def overlay(rules: Path, body: str) -> Path:
    path = rules / "xx.toml"
    path.write_text('[meta]\ndescription = "test overlay"\njurisdiction = "XX"\n' + body)
    return path


def load_error(rules: Path) -> RuleFileError:
    with pytest.raises(RuleFileError) as info:
        load_policy(rules, "XX")
    return info.value


@pytest.mark.parametrize("jurisdiction", [None, *JURISDICTIONS])
def test_real_rule_files_load(jurisdiction: str | None) -> None:
    policy = load_policy(RULES_DIR, jurisdiction)
    assert policy.jurisdiction == jurisdiction
    assert "content.medication-change" in policy.rule_ids
    assert "billing.missing-field" in policy.rule_ids


def test_overlays_differ_where_the_states_differ() -> None:
    tx, va, nj, mn = (load_policy(RULES_DIR, j).spec.billing for j in JURISDICTIONS)
    assert (tx.period_unit_cap, tx.period_days, tx.group_size_max) == (104, 182, 12)
    assert (va.daily_unit_cap, va.yearly_hour_cap, va.group_size_max) == (16, 900, 10)
    assert nj.daily_unit_cap == 16 and nj.program_modifiers["sud"] == "HF"
    assert "goal" in mn.required_fields and "goal" not in load_policy(RULES_DIR).spec.billing.required_fields


def test_a_valid_overlay_adds_and_disables_rules(rules: Path) -> None:
    overlay(rules, GOOD_RULE + "\n[content.stigmatizing-language]\nenabled = false\n")
    policy = load_policy(rules, "XX")
    assert "content.extra" in policy.rule_ids
    assert "content.stigmatizing-language" not in policy.rule_ids


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (
            GOOD_RULE.replace('kind = "pattern"', 'kind = "regex"'),
            "content.extra.kind",
            "unknown rule kind 'regex'",
        ),
        (GOOD_RULE.replace('kind = "pattern"\n', ""), "content.extra.kind", "required key is missing"),
        (
            GOOD_RULE.replace("patterns = ['\\bfoo\\b']", "patterns = ['ok', '(unclosed']"),
            "content.extra.patterns[1]",
            "bad pattern: missing ), unterminated subpattern",
        ),
        (GOOD_RULE.replace('message = "m"\n', ""), "content.extra.message", "required key is missing"),
        (
            GOOD_RULE.replace('severity = "warn"', 'severity = "stop"'),
            "content.extra.severity",
            "Input should be",
        ),
        (
            GOOD_RULE.replace('roles = ["peer-specialist"]', 'roles = ["janitor"]'),
            "content.extra.roles[0]",
            "Input should be",
        ),
        (GOOD_RULE + "colour = 'red'\n", "content.extra.colour", "unknown key"),
        (
            "[content.medication-change]\nobjects = ['(?P<x']\n",
            "content.medication-change.objects[0]",
            "bad pattern",
        ),
        ("[billing]\ncodee = 'H0038'\n", "billing.codee", "unknown key"),
        (
            "[billing]\nperiod_unit_cap = 10\n",
            "billing.period_days",
            "period_unit_cap and period_days go together",
        ),
        (
            "[checks.billing.overtime]\nseverity = 'warn'\nmessage = 'm'\n",
            "checks.billing.overtime",
            "unknown check",
        ),
        (
            "[checks.billing.daily-cap]\nmessage = 'over {limit}'\n",
            "checks.billing.daily-cap.message",
            "unknown placeholder {limit}",
        ),
        (
            "[permissions.grants.peer-specialist]\ncreate = ['Encounter', 'Condition']\n",
            "permissions.grants.peer-specialist.create[1]",
            "peers may never create Condition",
        ),
        (
            "[permissions.grants.peer-supervisor]\nupdate = ['CarePlan']\n",
            "permissions.grants.peer-supervisor.update[0]",
            "peers may never update CarePlan:assess-plan",
        ),
        (
            "[minimum_necessary]\nPatient = ['name', 'bad path!']\n",
            "minimum_necessary.Patient[1]",
            "FHIR element path",
        ),
        ("[language]\nnegation = ['(?<=a+)b']\n", "language.negation[0]", "bad pattern"),
    ],
)
def test_broken_overlay_names_file_key_and_reason(rules: Path, body: str, key: str, reason: str) -> None:
    path = overlay(rules, body)
    err = load_error(rules)
    assert (err.file, err.key) == (str(path), key)
    assert reason in err.reason
    assert str(path) in str(err) and key in str(err)


def test_missing_key_in_the_default_file_names_the_default(rules: Path) -> None:
    default = rules / "default.toml"
    default.write_text(default.read_text().replace('code = "H0038"\n', ""))
    with pytest.raises(RuleFileError) as info:
        load_policy(rules)
    assert (info.value.file, info.value.key, info.value.reason) == (
        str(default),
        "billing.code",
        "required key is missing",
    )


def test_a_missing_check_is_an_error(rules: Path) -> None:
    default = rules / "default.toml"
    text = default.read_text()
    start = text.index("[checks.billing.late-note]")
    end = text.index("[checks.supervision.cosign]")
    default.write_text(text[:start] + text[end:])
    with pytest.raises(RuleFileError) as info:
        load_policy(rules)
    assert (info.value.key, info.value.reason) == ("checks.billing.late-note", "required key is missing")


def test_not_toml(rules: Path) -> None:
    path = rules / "xx.toml"
    path.write_text("[meta\n")
    err = load_error(rules)
    assert (err.file, err.key) == (str(path), "(file)")
    assert err.reason.startswith("not valid TOML")


def test_unknown_jurisdiction_and_mismatched_overlay(rules: Path) -> None:
    with pytest.raises(RuleFileError) as info:
        load_policy(rules, "ZZ")
    assert info.value.file == str(rules / "zz.toml") and "cannot read" in info.value.reason
    (rules / "yy.toml").write_text('[meta]\ndescription = "d"\njurisdiction = "XX"\n')
    with pytest.raises(RuleFileError) as info:
        load_policy(rules, "YY")
    assert info.value.key == "meta.jurisdiction"
    with pytest.raises(RuleFileError) as info:
        load_policy(rules, "Texas")
    assert info.value.key == "jurisdiction"


def test_toml_nested_past_the_parser_is_a_rule_file_error(rules: Path) -> None:
    path = overlay(rules, "a = " + "[" * 100_000 + "]" * 100_000 + "\n")  # was a RecursionError traceback
    err = load_error(rules)
    assert (err.file, err.key) == (str(path), "(file)")
    assert "nested too deeply" in err.reason
