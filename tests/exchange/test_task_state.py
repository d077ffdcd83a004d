"""The SDOH Clinical Care Task state machine as a truth table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bridge.domain import ReferralStatus as S
from bridge.errors import InputError, StateTransitionError
from bridge.exchange.task_state import (
    BSER_SYSTEM,
    allowed_actions,
    apply_action,
    check_transition,
    parse_action,
)
from bridge.exchange.task_state import (
    ReferralAction as A,
)

AT = datetime(2026, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=-5)))

ALLOWED = {
    (S.REQUESTED, S.ACCEPTED),
    (S.REQUESTED, S.REJECTED),
    (S.REQUESTED, S.CANCELLED),
    (S.ACCEPTED, S.IN_PROGRESS),
    (S.ACCEPTED, S.CANCELLED),
    (S.IN_PROGRESS, S.ON_HOLD),
    (S.IN_PROGRESS, S.COMPLETED),
    (S.IN_PROGRESS, S.FAILED),
    (S.IN_PROGRESS, S.CANCELLED),
    (S.ON_HOLD, S.IN_PROGRESS),
}


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("target", list(S))
def test_transition_table(current: S, target: S) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target)
    else:
        with pytest.raises(StateTransitionError) as exc:
            check_transition(current, target)
        assert exc.value.current == current.value and exc.value.requested == target.value


def test_allowed_actions() -> None:
    assert allowed_actions(S.REQUESTED) == [A.ACCEPT, A.DECLINE, A.CANCEL]
    assert allowed_actions(S.IN_PROGRESS) == [A.HOLD, A.COMPLETE, A.FAIL, A.CANCEL]
    assert allowed_actions(S.COMPLETED) == []


def _task(status: str) -> dict:
    return {
        "resourceType": "Task",
        "id": "t1",
        "status": status,
        "intent": "order",
        "meta": {"versionId": "2"},
    }


def test_accept_sets_status_and_bser_business_status() -> None:
    new = apply_action(_task("requested"), A.ACCEPT, at=AT)
    assert new["status"] == "accepted"
    assert new["businessStatus"]["coding"] == [{"system": BSER_SYSTEM, "code": "3.0", "display": "Accepted"}]
    assert new["lastModified"] == "2026-03-14T09:30:00-05:00"


def test_decline_needs_a_reason() -> None:
    with pytest.raises(InputError) as exc:
        apply_action(_task("requested"), A.DECLINE, at=AT)
    assert exc.value.field == "reason"
    new = apply_action(_task("requested"), A.DECLINE, at=AT, reason="outside our service area")
    assert new["status"] == "rejected" and new["statusReason"] == {"text": "outside our service area"}
    assert new["businessStatus"]["coding"][0]["code"] == "4.0"


def test_complete_adds_outputs_once() -> None:
    with pytest.raises(InputError) as exc:
        apply_action(_task("in-progress"), A.COMPLETE, at=AT)
    assert exc.value.field == "outputs"
    with pytest.raises(InputError) as exc:
        apply_action(_task("in-progress"), A.COMPLETE, at=AT, outputs=["Observation/1"])
    assert exc.value.field == "outputs.0"
    task = _task("in-progress")
    task["output"] = [{"type": {"text": "x"}, "valueReference": {"reference": "Procedure/p1"}}]
    new = apply_action(task, A.COMPLETE, at=AT, outputs=["Procedure/p1", "http://ehr/fhir/Encounter/e1"])
    refs = [o["valueReference"]["reference"] for o in new["output"]]
    assert refs == ["Procedure/p1", "http://ehr/fhir/Encounter/e1"]
    assert new["output"][1]["type"]["coding"][0]["code"] == "resulting-activity"
    assert new["businessStatus"]["coding"][0]["code"] == "7.0"
    assert task["status"] == "in-progress"  # the input is not modified


def test_closed_and_unknown_states() -> None:
    with pytest.raises(StateTransitionError, match="closed"):
        apply_action(_task("completed"), A.START, at=AT)
    with pytest.raises(InputError) as exc:
        apply_action(_task("ready"), A.ACCEPT, at=AT)
    assert exc.value.field == "Task.status"
    with pytest.raises(InputError) as exc:
        parse_action("approve")
    assert exc.value.field == "action"
    assert parse_action("complete") is A.COMPLETE
