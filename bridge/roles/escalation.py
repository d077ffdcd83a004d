"""Escalation: crisis support by a peer is non-clinical and is followed by an immediate escalation to
a supervisor or clinician (shared domain.md, "What peers may do"). A note of kind ``crisis`` is held
until the escalation (a Task or Communication) is recorded. Risk-of-harm language in any note is the
content rule ``content.risk-of-harm`` with ``satisfied_by = "escalation"``; this is the same duty
keyed on what the peer says the note is, so a crisis note without alarming words is not missed.
"""

from __future__ import annotations

from collections.abc import Collection

from bridge.domain import NoteKind, Role
from bridge.roles.checks import Checks
from bridge.roles.decision import Violation
from bridge.roles.facts import NoteFacts


def check_crisis_escalation(
    facts: NoteFacts, checks: Checks, peer_roles: Collection[Role]
) -> tuple[list[Violation], list[str]]:
    if facts.role not in peer_roles or facts.kind is not NoteKind.CRISIS:
        return [], []
    if not checks.enabled("escalation.crisis-note"):
        return [], []
    if facts.has_escalation:
        return [], ["escalation.crisis-note"]
    return [checks.violation("escalation.crisis-note", field="escalation_ref")], ["escalation.crisis-note"]
