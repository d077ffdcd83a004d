"""The referral Task state machine (HL7 SDOH Clinical Care), pure: no I/O, no clock reads.

Profile: SDOHCC-TaskForReferralManagement,
http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-TaskForReferralManagement.html
Statuses the recipient (the peer organization) may set: accepted, rejected, in-progress, on-hold,
failed, completed (and cancelled, which either side may). Transitions enforced, from shared domain.md:
requested→accepted|rejected|cancelled; accepted→in-progress|cancelled;
in-progress→on-hold|completed|failed|cancelled; on-hold→in-progress.

This module is the one place the table and the action→status map live: the exchange checks an
action here before it touches the EHR, the API's routes and the inbox page's buttons are
:data:`PEER_ACTIONS` (:func:`peer_actions` per status). The Task JSON for the new status (business
status, statusReason, executionPeriod, outputs) is built by one function,
:func:`bridge.mappers.task_with_status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from bridge.domain import ReferralStatus
from bridge.errors import InputError, StateTransitionError

S = ReferralStatus
TRANSITIONS: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    S.REQUESTED: frozenset({S.ACCEPTED, S.REJECTED, S.CANCELLED}),
    S.ACCEPTED: frozenset({S.IN_PROGRESS, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ON_HOLD, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.IN_PROGRESS}),
}


class ReferralAction(StrEnum):
    """What a peer can do to a referral; each names one target status."""

    ACCEPT = "accept"
    DECLINE = "decline"
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


TARGET: dict[ReferralAction, ReferralStatus] = {
    ReferralAction.ACCEPT: S.ACCEPTED,
    ReferralAction.DECLINE: S.REJECTED,
    ReferralAction.START: S.IN_PROGRESS,
    ReferralAction.HOLD: S.ON_HOLD,
    ReferralAction.RESUME: S.IN_PROGRESS,
    ReferralAction.COMPLETE: S.COMPLETED,
    ReferralAction.FAIL: S.FAILED,
    ReferralAction.CANCEL: S.CANCELLED,
}

# what the API and the inbox page offer a peer (one route and one button each)
PEER_ACTIONS: tuple[ReferralAction, ...] = (
    ReferralAction.ACCEPT,
    ReferralAction.DECLINE,
    ReferralAction.START,
    ReferralAction.COMPLETE,
)

# the profile requires statusReason when a Task ends up in one of these
NEEDS_REASON = frozenset({S.REJECTED, S.CANCELLED, S.ON_HOLD, S.FAILED})


def parse_action(value: str) -> ReferralAction:
    try:
        return ReferralAction(value)
    except ValueError:
        allowed = ", ".join(a.value for a in ReferralAction)
        raise InputError("action", f"unknown action {value!r} (one of: {allowed})") from None


def allowed_actions(current: ReferralStatus) -> list[ReferralAction]:
    """The actions the state machine allows on a referral in ``current`` status."""
    nexts = TRANSITIONS.get(current, frozenset())
    return [a for a in ReferralAction if TARGET[a] in nexts]


def peer_actions(current: ReferralStatus) -> list[ReferralAction]:
    """The :data:`PEER_ACTIONS` open on a referral in ``current`` status (the page's buttons)."""
    return [a for a in allowed_actions(current) if a in PEER_ACTIONS]


def check_transition(current: ReferralStatus, target: ReferralStatus) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        if current not in TRANSITIONS:
            raise StateTransitionError(current.value, target.value, "the referral is closed")
        raise StateTransitionError(current.value, target.value)


def check_action(
    current: ReferralStatus, action: ReferralAction, *, reason: str | None, outputs: Sequence[str]
) -> ReferralStatus:
    """The status ``action`` moves a referral in ``current`` to; raises when it may not, or when
    what the target needs is missing (a reason; for completing, the services delivered)."""
    target = TARGET[action]
    check_transition(current, target)
    if target in NEEDS_REASON and not (reason and reason.strip()):
        raise InputError("reason", f"required to move a referral to {target.value}")
    if action is ReferralAction.COMPLETE and not outputs:
        raise InputError("outputs", "completing a referral needs the Procedure or Encounter delivered")
    return target
