"""The SDOH Clinical Care Task state machine as a truth table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bridge.domain import ReferralStatus as S
from bridge.errors import InputError, StateTransitionError
from bridge.exchange.task_state import (
    NEEDS_REASON,
    PEER_ACTIONS,
    TARGET,
    TRANSITIONS,
    allowed_actions,
    check_action,
    check_transition,
    parse_action,
    peer_actions,
)
from bridge.exchange.task_state import (
    ReferralAction as A,
)
from bridge.mappers import task_with_status

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


def test_peer_actions_are_what_the_api_and_the_page_offer() -> None:
    from bridge.web.routes import ROUTES

    assert peer_actions(S.REQUESTED) == [A.ACCEPT, A.DECLINE]
    assert peer_actions(S.ACCEPTED) == [A.START]
    assert peer_actions(S.IN_PROGRESS) == [A.COMPLETE]
    assert peer_actions(S.COMPLETED) == []
    routed = {r.name.removeprefix("referral_") for r in ROUTES if r.name.startswith("referral_")}
    assert routed == {a.value for a in PEER_ACTIONS}


def test_an_action_needs_what_its_status_needs() -> None:
    assert check_action(S.REQUESTED, A.ACCEPT, reason=None, outputs=()) is S.ACCEPTED
    with pytest.raises(InputError) as exc:
        check_action(S.REQUESTED, A.DECLINE, reason="  ", outputs=())
    assert exc.value.field == "reason"
    assert check_action(S.REQUESTED, A.DECLINE, reason="outside our area", outputs=()) is S.REJECTED
    with pytest.raises(InputError) as exc:
        check_action(S.IN_PROGRESS, A.COMPLETE, reason=None, outputs=())
    assert exc.value.field == "outputs"
    assert check_action(S.IN_PROGRESS, A.COMPLETE, reason=None, outputs=["Procedure/p1"]) is S.COMPLETED
    with pytest.raises(StateTransitionError, match="closed"):
        check_action(S.COMPLETED, A.START, reason=None, outputs=())


def test_unknown_actions() -> None:
    with pytest.raises(InputError) as exc:
        parse_action("approve")
    assert exc.value.field == "action"
    assert parse_action("complete") is A.COMPLETE


def test_the_one_task_builder_moves_the_task_as_the_table_says() -> None:
    """What the exchange sends for each action the table allows (the mapper's Task builder)."""
    for current, nexts in TRANSITIONS.items():
        for action in allowed_actions(current):
            outputs = ["Procedure/p1"] if action is A.COMPLETE else []
            reason = "why" if TARGET[action] in NEEDS_REASON else None
            target = check_action(current, action, reason=reason, outputs=outputs)
            assert target in nexts
            task = {"resourceType": "Task", "id": "t1", "status": current.value, "intent": "order"}
            task |= {"for": {"reference": "Patient/1"}, "code": {"text": "x"}}
            task |= {"authoredOn": "2026-03-01T09:00:00-05:00"}
            new = task_with_status(task, target, now=AT, reason=reason, outputs=outputs)
            assert new["status"] == target.value and new["lastModified"] == "2026-03-14T09:30:00-05:00"
