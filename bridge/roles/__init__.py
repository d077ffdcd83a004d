"""Scope-of-practice and privacy policy: pure decisions from the rules in ``config/rules/``.

Load once, share the :class:`Policy` (immutable), ask it questions. Every answer names the rules
that fired and the rules evaluated; nothing here does I/O except :func:`load_policy` reading the
rule files, and nothing reads the clock (times are arguments).

    from bridge.roles import load_policy, NoteFacts
    policy = load_policy("config/rules", "TX")               # RuleFileError(file, key, reason) if broken

    decision = policy.check_note(NoteFacts(text="...", audience="care-team"))
    decision.verdict            # Verdict.ALLOW | WARN | HOLD | BLOCK
    decision.violations         # (Violation(rule, severity, message, evidence=Evidence(...)), ...)
    decision.rules_evaluated    # every rule that was applied
    decision.to_dict()          # {"verdict", "violations": [{rule, severity, message, evidence}], ...}
    decision.to_log_dict()      # the same without the note's words (offsets only): for logs and audit
    decision.raise_for_verdict()  # ScopeViolationError / ConsentRequiredError on block
    decision.billing            # {code, modifiers, minutes, units, billable_units, ...} when billable
    decision.disclosure         # {allowed, labels, notice, consent_id} when a recipient was named

    policy.check_note(peer_note, author=peer_worker, encounter=encounter, usage=BillingUsage(...), at=now)
    policy.check_disclosure(peer_note, "clinic", consents, at=now)   # Disclosure: allowed, labels, notice
    policy.peer_view(task=..., service_request=..., patient=..., supporting=[...])  # minimum necessary
    policy.permits("peer-specialist", "create", "Condition")          # Permission(allowed, rule, reason)
    policy.permits_resource("peer-specialist", "create", observation_dict)
    policy.check_assignment(peer_worker, participant, "recovery-support")  # Decision
    policy.check_encounter(session, peer=peer_worker, participant=participant,
                           programs=referral.programs, usage=BillingUsage(...))  # Decision
    policy.billing_units(38)    # 3 (15-minute units, midpoint rule)
    policy.describe()           # every rule in force: id, kind, severity, message, why

Verdicts: ``allow`` (go), ``warn`` (go, with advice), ``hold`` (keep, do not finalize/send until a
co-sign, escalation or consent exists), ``block`` (refused as written).

What is judged depends on what the facts carry (see :class:`NoteFacts`): text alone gets the content
rules; a ``recipient`` adds audience and Part 2 consent; ``billable`` adds documentation and billing;
a ``certification_level`` adds co-sign and supervision recency; ``kind="crisis"`` needs an escalation.
Modules: ``language`` (sentences, clauses, negated/reported/quoted scopes), ``content`` (the three
matcher kinds), ``billing``, ``supervision``, ``escalation``, ``privacy`` (disclosure, peer view),
``permissions``, ``assignment``, ``encounter`` (session checks), ``schema`` + ``loader`` (rule
files), ``command`` (``bridge rules``),
``evaluate`` (precision/recall on the labeled corpus).
"""

from __future__ import annotations

from bridge.roles.decision import Decision, Evidence, Severity, Verdict, Violation
from bridge.roles.facts import BillingUsage, NoteFacts
from bridge.roles.loader import load_policy, load_rule_files
from bridge.roles.permissions import Permission
from bridge.roles.policy import Policy
from bridge.roles.privacy import Disclosure

__all__ = [
    "BillingUsage",
    "Decision",
    "Disclosure",
    "Evidence",
    "NoteFacts",
    "Permission",
    "Policy",
    "Severity",
    "Verdict",
    "Violation",
    "load_policy",
    "load_rule_files",
]
