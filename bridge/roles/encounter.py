"""Encounter-level checks: may this peer have held this session, and what of it can be billed?

Judged before a session is queued for the EHR (``ExchangeService.submit_encounter``):

- assignment (``[assignment]``, domain.md "a peer may only serve within their endorsement ... and
  not where a dual relationship exists"): the peer's endorsement against the referral's program
  when the program is one the rule file knows, and dual relationships (address, employer,
  household, family). Both block by default.
- billing of a billable session (HCPCS H0038, ``[billing]``): units (a session under one unit),
  group-size caps, activities a jurisdiction does not pay for, daily / period / yearly caps given
  the usage passed in. All warnings by default: the session happened and is recorded either way.
  Documentation fields and note timeliness are the note's checks, not the session's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bridge.domain import Participant, PeerEncounter, PeerWorker
from bridge.roles import billing
from bridge.roles.assignment import check_assignment
from bridge.roles.checks import Checks
from bridge.roles.decision import Decision, Violation
from bridge.roles.facts import BillingUsage, NoteFacts
from bridge.roles.schema import AssignmentSpec, BillingSpec

# note-level billing checks, not judged on a session alone
_NOTE_ONLY = frozenset({"billing.missing-field", "billing.late-note"})


def program_key(name: str, spec: AssignmentSpec) -> str | None:
    """The ``[assignment.programs]`` key a referral's program name stands for, if any:
    "Recovery support", "recovery-support program" -> ``recovery-support``. None when unknown:
    free-text program names ("Harbor warm handoff") are shown to the peer, not guessed at."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    for candidate in (slug, slug.removesuffix("-program"), slug.removesuffix("-services")):
        if candidate in spec.programs:
            return candidate
    return None


def check_encounter(
    encounter: PeerEncounter,
    *,
    peer: PeerWorker,
    participant: Participant,
    programs: Sequence[str],
    usage: BillingUsage | None,
    assignment: AssignmentSpec,
    billing_spec: BillingSpec,
    checks: Checks,
) -> Decision:
    violations: list[Violation] = []
    evaluated: list[str] = []
    known = [k for k in (program_key(p, assignment) for p in programs) if k is not None]
    # a session serves one referral: any of its known programs the peer qualifies for will do
    qualifying = next((k for k in known if set(assignment.programs[k]) & set(peer.endorsements)), None)
    decided = check_assignment(
        peer, participant, qualifying or (known[0] if known else None), assignment, checks
    )
    violations.extend(decided.violations)
    evaluated.extend(decided.rules_evaluated)

    summary = None
    if encounter.billable:
        facts = NoteFacts(
            # the billing arithmetic reads the session, never a note's words
            text="(session)",
            participant_id=encounter.participant_id,
            billable=True,
            program=known[0] if known else None,
            start=encounter.start,
            end=encounter.end,
            modality=encounter.modality,
            method=encounter.method,
            activities=encounter.activities,
            group_size=encounter.group_size,
            usage=usage or BillingUsage(),
        )
        found, ran, summary = billing.check_billing(facts, billing_spec, checks, skip=_NOTE_ONLY)
        violations.extend(found)
        evaluated.extend(ran)
    return Decision.of(violations, evaluated, billing=summary)
