"""Every rule the real rule files can fire has a truth-table case that fires it and a near miss that
must not, in every jurisdiction: the rule ids are enumerated from the loaded policies, not listed
by hand, so a rule added to ``config/rules/*.toml`` without cases fails here."""

from __future__ import annotations

from collections.abc import Iterable

from bridge.roles import Policy
from tests.roles.test_checks_truth_table import CASES
from tests.roles.test_content_rules import FIRES, NEAR_MISSES


def uncovered(rule_ids: Iterable[str], firing: set[str], near_miss: set[str]) -> dict[str, list[str]]:
    """Rule ids lacking a firing case or a near miss, by what they lack."""
    ids = sorted(set(rule_ids))
    return {
        "no firing case": [r for r in ids if r not in firing],
        "no near miss": [r for r in ids if r not in near_miss],
    }


def covered() -> tuple[set[str], set[str]]:
    firing = {r for r, _, _ in FIRES} | {c for c, (fires, _) in CASES.items() if fires is not None}
    near_miss = {r for r, _ in NEAR_MISSES} | {c for c, (_, miss) in CASES.items() if miss is not None}
    return firing, near_miss


def test_every_loaded_rule_has_a_firing_case_and_a_near_miss(
    policy: Policy, policies: dict[str, Policy]
) -> None:
    loaded = {rule for p in (policy, *policies.values()) for rule in p.rule_ids}
    assert len(loaded) > 20  # the files were really read: 9 content rules and 15 checks today
    firing, near_miss = covered()
    assert uncovered(loaded, firing, near_miss) == {"no firing case": [], "no near miss": []}


def test_a_rule_without_cases_is_reported() -> None:
    firing, near_miss = covered()
    only_fires = "content.only-fires"
    report = uncovered(
        ["content.new-rule", only_fires, "content.diagnosis-code"], firing | {only_fires}, near_miss
    )
    assert report == {
        "no firing case": ["content.new-rule"],
        "no near miss": ["content.new-rule", only_fires],
    }
