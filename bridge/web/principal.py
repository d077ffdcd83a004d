"""Who is calling: the authenticated principal and the pure access decision.

``has_required_scope`` is the Starlette-style pure check (no I/O): given the principal, the action
and the organization that owns the thing acted on, it answers allow/deny *and the rule that decided*
(pycasbin ``enforce_ex`` style), so a 403 can say why. Two layers must both allow:

1. ``ROLE_ACTIONS``, which API actions each role has at all (clinicians, for instance, work in their
   EHR and have none here, even though the rule files let them write anything clinical), and
2. the policy engine's permission grants from ``config/rules`` (``permits(role, verb, record)``),
   through ``POLICY_GRANTS``, so an integrator can narrow a role in the rule files without a code
   change. The scope-of-practice content checks on notes live in ``bridge.roles`` too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bridge.domain import Role
from bridge.exchange.views import Actor
from bridge.store.audit import PRACTITIONER


class Action(StrEnum):
    """Everything a caller can ask the API to do."""

    SUBMIT_ENCOUNTER = "encounter.submit"
    SUBMIT_NOTE = "note.submit"
    CHECK_NOTE = "note.check"
    COSIGN_NOTE = "note.cosign"  # also: list the held notes one may co-sign
    ESCALATE_NOTE = "note.escalate"  # record the escalation a risk-of-harm hold waits for
    READ_SUBMISSION = "submission.read"
    READ_REFERRALS = "referral.read"
    ACT_ON_REFERRAL = "referral.act"
    READ_OUTBOX = "outbox.read"  # also: the operations page
    RETRY_OUTBOX = "outbox.retry"  # put a dead letter back in the queue (the operations page)
    VIEW_INBOX = "inbox.view"


# role -> actions it may take (within its own organization). An integrator reads outbox and
# submission state (ids, statuses, FHIR ids) but nothing that carries note text or referral PHI.
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.PEER_SPECIALIST: frozenset(
        {
            Action.SUBMIT_ENCOUNTER,
            Action.SUBMIT_NOTE,
            Action.CHECK_NOTE,
            Action.ESCALATE_NOTE,
            Action.READ_SUBMISSION,
            Action.READ_REFERRALS,
            Action.ACT_ON_REFERRAL,
            Action.VIEW_INBOX,
        }
    ),
    Role.PEER_SUPERVISOR: frozenset(
        {
            Action.SUBMIT_ENCOUNTER,
            Action.SUBMIT_NOTE,
            Action.CHECK_NOTE,
            Action.COSIGN_NOTE,
            Action.ESCALATE_NOTE,
            Action.READ_SUBMISSION,
            Action.READ_REFERRALS,
            Action.ACT_ON_REFERRAL,
            Action.VIEW_INBOX,
        }
    ),
    Role.CARE_COORDINATOR: frozenset({Action.READ_REFERRALS, Action.READ_SUBMISSION}),
    Role.CLINICIAN: frozenset(),  # clinicians work in their EHR; the bridge API is not theirs
    Role.INTEGRATOR: frozenset({Action.READ_SUBMISSION, Action.READ_OUTBOX, Action.RETRY_OUTBOX}),
}


# action -> the (verb, record) grants of the rule files that allow it (any one suffices)
POLICY_GRANTS: dict[Action, tuple[tuple[str, str], ...]] = {
    Action.SUBMIT_ENCOUNTER: (("create", "encounter"),),
    Action.SUBMIT_NOTE: (("create", "note"),),
    Action.CHECK_NOTE: (("create", "note"),),
    Action.COSIGN_NOTE: (("cosign", "note"),),
    Action.ESCALATE_NOTE: (("update", "note"),),
    # a submission's state: the outbox (integrators) or the record it carries (its authors)
    Action.READ_SUBMISSION: (("read", "outbox"), ("read", "note"), ("read", "encounter")),
    Action.READ_OUTBOX: (("read", "outbox"),),
    Action.RETRY_OUTBOX: (("update", "outbox"),),
    Action.READ_REFERRALS: (("read", "referral"),),
    Action.ACT_ON_REFERRAL: (("update", "referral"),),
    Action.VIEW_INBOX: (("read", "referral"),),
}


class Grant(Protocol):
    """What the rule files answer for one (role, verb, record) (``bridge.roles.Permission``)."""

    @property
    def allowed(self) -> bool: ...
    @property
    def rule(self) -> str: ...
    @property
    def reason(self) -> str: ...


# ``Policy.permits``: (role, verb, record) -> the grant that decided
Permits = Callable[[Role, str, str], Grant]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``subject`` is the token ``sub`` or the API key's name."""

    subject: str
    role: Role
    organization: str
    practitioner_id: str | None = None
    via: str = "jwt"  # "jwt" | "api_key"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str
    reason: str

    def __bool__(self) -> bool:
        # so ``if not has_required_scope(...)`` means what it reads as
        return self.allowed


def has_required_scope(
    principal: Principal, action: Action, *, organization: str, permits: Permits | None = None
) -> Decision:
    """May ``principal`` take ``action`` on something owned by ``organization``? Pure.

    ``permits`` is the policy engine's grant check (``Policy.permits``); without it only the
    API's role table decides.
    """
    if principal.organization != organization:
        return Decision(False, "same-organization", "callers act only within their own organization")
    role = principal.role.value
    if action not in ROLE_ACTIONS.get(principal.role, frozenset()):
        return Decision(False, f"role:{role}", f"role {role} may not {action.value}")
    if permits is None:
        return Decision(True, f"role:{role}", "allowed")
    answers = [permits(principal.role, verb, record) for verb, record in POLICY_GRANTS[action]]
    granted = next((a for a in answers if a.allowed), None)
    if granted is None:
        return Decision(False, str(answers[0].rule), str(answers[0].reason))
    return Decision(True, str(granted.rule), str(granted.reason))


def may_see_assignee(principal: Principal, assignee: str | None, *, only_own: bool) -> bool:
    """Whether a peer sees a referral assigned to ``assignee`` (``peers_see_only_own`` setting).

    Unassigned referrals are the organization's queue and visible to every peer; supervisors see all.
    """
    if not only_own or principal.role is not Role.PEER_SPECIALIST or assignee is None:
        return True
    return assignee == principal.practitioner_id


def actor_for(principal: Principal, *, source: str | None = None) -> Actor:
    """The exchange's name for a caller: in the audit log and as the scope of idempotency keys
    (ids, never names). A peer is named by practitioner id, so "who accepted this referral" reads
    back from the audit log."""
    p = principal
    name = f"{PRACTITIONER}{p.practitioner_id}" if p.practitioner_id else f"{p.via}:{p.subject}"
    return Actor(
        name=name,
        role=p.role.value,
        organization=p.organization,
        source=source,
        practitioner_id=p.practitioner_id,
    )
