"""Encounter-level checks (``Policy.check_encounter``) as a truth table on the real rule files:
each rule fires on one case and stays quiet on its near miss."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bridge.domain import Participant, PeerEncounter, PeerWorker, parse
from bridge.roles import BillingUsage, Policy, Verdict
from bridge.roles.encounter import program_key

CENTRAL = timezone(timedelta(hours=-6))
START = datetime(2026, 3, 2, 14, 0, tzinfo=CENTRAL)
ADDRESS = {"line": "12 Elm St.", "city": "Austin", "state": "TX", "postal_code": "78701"}


def peer(**changes: Any) -> PeerWorker:
    data: dict[str, Any] = {
        "id": "peer-1",
        "name": {"given": "Sam", "family": "Peer"},
        "credential": "PRSS",
        "certification_level": "certified",
        "organization_id": "harbor",
        "endorsements": ["recovery-support"],
    } | changes
    return parse(PeerWorker, data)


def person(**changes: Any) -> Participant:
    return parse(Participant, {"id": "p-1", "name": {"given": "Dana", "family": "Example"}} | changes)


def session(minutes: int = 45, **changes: Any) -> PeerEncounter:
    data: dict[str, Any] = {
        "id": "enc-1",
        "participant_id": "p-1",
        "peer_id": "peer-1",
        "start": START.isoformat(),
        "end": (START + timedelta(minutes=minutes)).isoformat(),
        "setting": "community",
        "location_name": "Drop-in center",
        "activities": ["recovery-coaching"],
        "billable": True,
    } | changes
    return parse(PeerEncounter, data)


def fired(policy: Policy, **kw: Any) -> set[str]:
    kw.setdefault("peer", peer())
    kw.setdefault("participant", person())
    return {v.rule for v in policy.check_encounter(kw.pop("encounter", session()), **kw).violations}


@pytest.fixture(scope="module")
def tx(policies: dict[str, Policy]) -> Policy:
    return policies["TX"]


@pytest.fixture(scope="module")
def va(policies: dict[str, Policy]) -> Policy:
    return policies["VA"]


def test_a_plain_session_passes(tx: Policy) -> None:
    d = tx.check_encounter(session(), peer=peer(), participant=person(), programs=["Recovery support"])
    assert d.verdict is Verdict.ALLOW
    assert {"assignment.endorsement", "assignment.dual-relationship", "billing.group-size"} <= set(
        d.rules_evaluated
    )
    # a session has no note yet: documentation and timeliness are judged with the note
    assert not {"billing.missing-field", "billing.late-note"} & set(d.rules_evaluated)
    assert d.billing is not None and d.billing["units"] == 3 and d.billing["billable_units"] == 3


@pytest.mark.parametrize(
    ("programs", "endorsements", "blocked"),
    [
        (["Mental health"], ["recovery-support"], True),
        (["Mental health"], ["mental-health"], False),  # near miss: the right endorsement
        (["Recovery support program"], ["mental-health"], True),
        (["Co-occurring"], ["mental-health"], False),  # either endorsement qualifies
        (["Harbor warm handoff", "mental-health"], ["recovery-support"], True),
        (["Harbor warm handoff", "mental-health", "sud"], ["recovery-support"], False),  # one qualifies
        (["Harbor warm handoff"], ["youth"], False),  # a free-text program is not guessed at
        ([], ["youth"], False),  # no referral program: nothing to match
    ],
)
def test_endorsement_against_the_referrals_program(
    tx: Policy, programs: list[str], endorsements: list[str], blocked: bool
) -> None:
    got = fired(tx, peer=peer(endorsements=endorsements), programs=programs)
    assert ("assignment.endorsement" in got) is blocked


@pytest.mark.parametrize(
    ("peer_changes", "person_changes", "expected"),
    [
        ({"household_id": "h-1"}, {"household_id": "h-1"}, True),
        ({"household_id": "h-1"}, {"household_id": "h-2"}, False),
        ({"employer": "Acme Foods"}, {"employer": "acme  foods"}, True),
        ({"employer": "Acme Foods"}, {"employer": "Acme Logistics"}, False),
        ({"family_ids": ["p-1"]}, {}, True),
        ({"family_ids": ["p-2"]}, {}, False),
        ({"address": ADDRESS}, {"address": ADDRESS | {"line": "12 elm st"}}, True),
        ({"address": ADDRESS}, {"address": ADDRESS | {"line": "14 Elm St."}}, False),
    ],
)
def test_dual_relationship(
    tx: Policy, peer_changes: dict[str, Any], person_changes: dict[str, Any], expected: bool
) -> None:
    d = tx.check_encounter(session(), peer=peer(**peer_changes), participant=person(**person_changes))
    assert ("assignment.dual-relationship" in {v.rule for v in d.violations}) is expected
    assert (d.verdict is Verdict.BLOCK) is expected


@pytest.mark.parametrize(("minutes", "expected"), [(7, True), (8, False)])
def test_a_session_under_one_unit_warns(tx: Policy, minutes: int, expected: bool) -> None:
    d = tx.check_encounter(session(minutes), peer=peer(), participant=person())
    assert ("billing.zero-units" in {v.rule for v in d.violations}) is expected
    assert d.verdict is (Verdict.WARN if expected else Verdict.ALLOW)


def test_unbillable_sessions_are_not_billing_checked(tx: Policy) -> None:
    d = tx.check_encounter(session(5, billable=False), peer=peer(), participant=person())
    assert d.verdict is Verdict.ALLOW and d.billing is None
    assert not any(r.startswith("billing.") for r in d.rules_evaluated)


@pytest.mark.parametrize(("size", "expected"), [(13, True), (12, False)])  # Texas: groups of at most 12
def test_group_size_cap(tx: Policy, size: int, expected: bool) -> None:
    enc = session(modality="group", group_size=size, activities=["group-facilitation"])
    d = tx.check_encounter(enc, peer=peer(), participant=person())
    assert ("billing.group-size" in {v.rule for v in d.violations}) is expected
    assert d.billing is not None and (d.billing["billable_units"] == 0) is expected
    assert d.billing["modifiers"] == ["HQ"]


@pytest.mark.parametrize(
    ("activities", "expected"),
    [(["transportation"], True), (["transportation", "recovery-coaching"], False)],
)
def test_non_billable_activities_warn_in_virginia(va: Policy, activities: list[str], expected: bool) -> None:
    d = va.check_encounter(session(activities=activities), peer=peer(), participant=person())
    assert ("billing.not-billable" in {v.rule for v in d.violations}) is expected
    assert d.verdict is (Verdict.WARN if expected else Verdict.ALLOW)


def test_non_billable_activity_is_billable_in_texas(tx: Policy) -> None:
    assert "billing.not-billable" not in fired(tx, encounter=session(activities=["transportation"]))


@pytest.mark.parametrize(("used", "expected"), [(14, True), (13, False)])  # VA: 16 units a day
def test_daily_cap_with_usage(va: Policy, used: int, expected: bool) -> None:
    got = fired(va, usage=BillingUsage(units_today=used))  # this session: 3 units
    assert ("billing.daily-cap" in got) is expected


def test_billing_warnings_never_block(va: Policy) -> None:
    enc = session(5, modality="group", group_size=11, activities=["transportation"])
    d = va.check_encounter(enc, peer=peer(), participant=person(), usage=BillingUsage(units_today=16))
    assert d.verdict is Verdict.WARN
    assert {v.rule for v in d.violations} == {
        "billing.zero-units",
        "billing.group-size",
        "billing.not-billable",
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Recovery support", "recovery-support"),
        ("recovery-support program", "recovery-support"),
        ("Mental Health Services", "mental-health"),
        ("SUD", "sud"),
        ("Harbor peer recovery program", None),
    ],
)
def test_program_key(tx: Policy, name: str, key: str | None) -> None:
    assert program_key(name, tx.spec.assignment) == key
