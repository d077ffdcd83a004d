"""What resolves a hold is rule data (``satisfied_by``): the exchange keeps a note held for what
the supervision queue can supply (a co-sign, an escalation) and refuses one that waits for
anything else, whichever rule it is."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.errors import PolicyError
from bridge.roles import Policy
from bridge.roles.checks import Checks
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory
from .test_held import _held_note, held_world


def test_each_hold_says_what_resolves_it(policy: Policy) -> None:
    assert policy.satisfied_by("supervision.cosign") == "cosign"
    assert policy.satisfied_by("content.risk-of-harm") == "escalation"
    assert policy.satisfied_by("escalation.crisis-note") == "escalation"
    assert policy.satisfied_by("privacy.consent-required") == "consent"
    assert policy.satisfied_by("content.medication-change") is None
    assert policy.satisfied_by("no.such-rule") is None


async def test_the_exchange_follows_the_rule_files(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory, policy: Policy
) -> None:
    w, _, team, svc = await held_world(sandbox_ehr, sqlite_store, make_service)
    sid, _ = await _held_note(w, svc, team)
    assert (await svc.submissions.get(sid)).state == "held"

    # a rule file in which nothing but a changed note resolves the co-sign hold
    specs = dict(policy.checks.specs)
    specs["supervision.cosign"] = specs["supervision.cosign"].model_copy(update={"satisfied_by": None})
    svc.ctx.policy = dataclasses.replace(policy, checks=Checks(specs))
    with pytest.raises(PolicyError) as exc:
        await _held_note(w, svc, team)
    assert "supervision.cosign" in exc.value.message
