from __future__ import annotations

from pathlib import Path

import pytest

from bridge.roles import Policy, load_policy

RULES_DIR = Path(__file__).resolve().parents[2] / "config" / "rules"
JURISDICTIONS = ("TX", "VA", "NJ", "MN")


@pytest.fixture(scope="session")
def policy() -> Policy:
    """The real default rule file."""
    return load_policy(RULES_DIR)


@pytest.fixture(scope="session")
def policies() -> dict[str, Policy]:
    """The real overlays, by jurisdiction code."""
    return {j: load_policy(RULES_DIR, j) for j in JURISDICTIONS}
