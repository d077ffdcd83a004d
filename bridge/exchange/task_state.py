"""The referral Task state machine (HL7 SDOH Clinical Care), pure: no I/O, no clock reads.

Profile: SDOHCC-TaskForReferralManagement,
http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition-SDOHCC-TaskForReferralManagement.html
Statuses the recipient (the peer organization) may set: accepted, rejected, in-progress, on-hold,
failed, completed (and cancelled, which either side may). Transitions enforced, from shared domain.md:
requested→accepted|rejected|cancelled; accepted→in-progress|cancelled;
in-progress→on-hold|completed|failed|cancelled; on-hold→in-progress.
Business statuses: CDC BSeR TaskBusinessStatusCS (http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from bridge.domain import ReferralStatus
from bridge.errors import InputError, StateTransitionError

BSER_SYSTEM = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
SDOHCC_TEMP_CODES = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"

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

# BSeR business status per action (code, display); None leaves Task.businessStatus as it was.
# The verified BSeR list has no "in progress" code, so start/hold/resume/fail keep the last one.
BUSINESS_STATUS: dict[ReferralAction, tuple[str, str] | None] = {
    ReferralAction.ACCEPT: ("3.0", "Accepted"),
    ReferralAction.DECLINE: ("4.0", "Declined"),
    ReferralAction.START: None,
    ReferralAction.HOLD: None,
    ReferralAction.RESUME: None,
    ReferralAction.COMPLETE: ("7.0", "Fulfillment Completed"),
    ReferralAction.FAIL: None,
    ReferralAction.CANCEL: ("6.0", "Fulfillment Cancelled"),
}

# the profile requires statusReason when a Task ends up in one of these
NEEDS_REASON = frozenset({S.REJECTED, S.CANCELLED, S.ON_HOLD, S.FAILED})
OUTPUT_TYPES = ("Procedure", "Encounter")


def parse_action(value: str) -> ReferralAction:
    try:
        return ReferralAction(value)
    except ValueError:
        allowed = ", ".join(a.value for a in ReferralAction)
        raise InputError("action", f"unknown action {value!r} (one of: {allowed})") from None


def allowed_actions(current: ReferralStatus) -> list[ReferralAction]:
    """The actions a peer may take on a referral in ``current`` status (for the inbox page)."""
    nexts = TRANSITIONS.get(current, frozenset())
    return [a for a in ReferralAction if TARGET[a] in nexts]


def check_transition(current: ReferralStatus, target: ReferralStatus) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        if current not in TRANSITIONS:
            raise StateTransitionError(current.value, target.value, "the referral is closed")
        raise StateTransitionError(current.value, target.value)


def apply_action(
    task: Mapping[str, Any],
    action: ReferralAction,
    *,
    at: datetime,
    reason: str | None = None,
    outputs: Sequence[str] = (),
) -> dict[str, Any]:
    """The updated Task JSON for ``action`` on ``task``; raises when the state machine forbids it.

    ``outputs`` are references (``Procedure/1``, ``Encounter/2`` or absolute URLs) to what was
    delivered; completing requires at least one. ``at`` becomes ``Task.lastModified``.
    """
    if at.tzinfo is None:
        raise InputError("at", "must carry a timezone")
    try:
        current = ReferralStatus(str(task.get("status")))
    except ValueError:
        raise InputError("Task.status", f"not an SDOH Clinical Care status: {task.get('status')!r}") from None
    target = TARGET[action]
    check_transition(current, target)
    if target in NEEDS_REASON and not (reason and reason.strip()):
        raise InputError("reason", f"required to move a referral to {target.value}")
    if action is ReferralAction.COMPLETE and not outputs:
        raise InputError("outputs", "completing a referral needs the Procedure or Encounter delivered")
    for i, ref in enumerate(outputs):
        rtype = ref.rstrip("/").split("/")[-2] if ref.count("/") >= 1 else ""
        if rtype not in OUTPUT_TYPES:
            raise InputError(f"outputs.{i}", "must reference a Procedure or an Encounter")

    new = copy.deepcopy(dict(task))
    new["status"] = target.value
    new["lastModified"] = at.isoformat()
    code = BUSINESS_STATUS[action]
    if code is not None:
        new["businessStatus"] = {"coding": [{"system": BSER_SYSTEM, "code": code[0], "display": code[1]}]}
    if target in NEEDS_REASON:
        new["statusReason"] = {"text": reason}
    else:
        new.pop("statusReason", None)
    if outputs:
        existing = list(new.get("output") or [])
        have = {(o.get("valueReference") or {}).get("reference") for o in existing}
        for ref in outputs:
            if ref in have:
                continue  # re-applying after a conflict must not add the same output twice
            existing.append(
                {
                    "type": {"coding": [{"system": SDOHCC_TEMP_CODES, "code": "resulting-activity"}]},
                    "valueReference": {"reference": ref},
                }
            )
        new["output"] = existing
    return new
