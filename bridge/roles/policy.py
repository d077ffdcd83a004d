"""The loaded rule set and the decisions it makes. Every method is pure and synchronous: no I/O, no
clock reads (times come in as arguments or inside the facts), same input, same answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge.domain import ConsentRecord, Participant, PeerEncounter, PeerNote, PeerWorker, Role
from bridge.errors import InputError
from bridge.roles import billing, privacy, supervision
from bridge.roles import encounter as encounter_checks
from bridge.roles.assignment import check_assignment
from bridge.roles.checks import Checks
from bridge.roles.content import ContentRule
from bridge.roles.decision import Decision, Evidence, Violation
from bridge.roles.escalation import check_crisis_escalation
from bridge.roles.facts import BillingUsage, NoteFacts
from bridge.roles.language import Analysis, Lexicon
from bridge.roles.permissions import Permission, categories_of, permits
from bridge.roles.schema import RuleFileSpec

_DISCLOSURE_KEYS = ("allowed", "labels", "notice", "consent_id")


@dataclass(frozen=True, slots=True)
class Policy:
    """A default rule set with its jurisdiction overlay applied. Build it with
    :func:`bridge.roles.load_policy`; share one instance (it is immutable and thread-safe)."""

    jurisdiction: str | None
    files: tuple[str, ...]
    spec: RuleFileSpec
    lexicon: Lexicon
    content: tuple[ContentRule, ...]
    checks: Checks

    @property
    def rule_ids(self) -> tuple[str, ...]:
        """Every rule this policy can fire (enabled content rules and checks)."""
        ids = [r.id for r in self.content]
        ids += [cid for cid, spec in self.checks.specs.items() if spec.enabled]
        return tuple(ids)

    def satisfied_by(self, rule_id: str) -> str | None:
        """What resolves a hold by ``rule_id``, as its rule says (``satisfied_by``): ``"cosign"``,
        ``"escalation"``, ``"consent"``, or None (nothing but a changed note)."""
        for rule in self.content:
            if rule.id == rule_id:
                return rule.satisfied_by
        check = self.checks.specs.get(rule_id)
        return check.satisfied_by if check is not None else None

    def describe(self) -> list[dict[str, Any]]:
        """Every enabled rule with its id, kind, severity, message and (for content rules) why it
        exists: for an integrator's listing or a peer-facing help page."""
        out: list[dict[str, Any]] = []
        for rule_id, spec in self.spec.content.items():
            if spec.enabled:
                out.append(
                    {
                        "rule": f"content.{rule_id}",
                        "kind": spec.kind,
                        "severity": spec.severity,
                        "message": spec.message,
                        "why": spec.why,
                    }
                )
        for check_id, check in self.checks.specs.items():
            if check.enabled:
                out.append(
                    {"rule": check_id, "kind": "check", "severity": check.severity, "message": check.message}
                )
        return out

    # --- notes ---------------------------------------------------------------------------------

    def analyze(self, text: str) -> Analysis:
        return Analysis(text, self.lexicon)

    def check_text(
        self, text: str, *, role: Role = Role.PEER_SPECIALIST, escalated: bool = False
    ) -> Decision:
        """Content rules only: the note text as written by ``role``."""
        return self.check_note(NoteFacts(text=text, role=role, escalated=escalated))

    def check_note(
        self,
        note: NoteFacts | PeerNote,
        *,
        author: PeerWorker | None = None,
        encounter: PeerEncounter | None = None,
        recipient: str | None = None,
        consents: Sequence[ConsentRecord] = (),
        usage: BillingUsage | None = None,
        program: str | None = None,
        at: datetime | None = None,
    ) -> Decision:
        """Judge a note: content (scope of practice, risk of harm), audience and consent (when a
        recipient is named), escalation of crisis notes, documentation and billing (when billable),
        supervision (when the author's certification level is known). Keyword arguments apply to a
        PeerNote only."""
        facts = (
            note
            if isinstance(note, NoteFacts)
            else NoteFacts.from_records(
                note,
                author=author,
                encounter=encounter,
                recipient=recipient,
                consents=consents,
                usage=usage,
                program=program,
                at=at,
            )
        )
        violations: list[Violation] = []
        evaluated: list[str] = []
        satisfied: list[str] = []
        sent: dict[str, Any] | None = None

        analysis = self.analyze(facts.text)
        fired: list[tuple[ContentRule, list[Evidence]]] = []
        for rule in self.content:
            if facts.role not in rule.roles:
                continue
            evaluated.append(rule.id)
            found = rule.find(analysis)
            if found:
                fired.append((rule, found))
        taken = [(ev.start, ev.end) for rule, found in fired if not rule.defer for ev in found]
        for rule, found in fired:
            if rule.defer:  # a review gives way to any other rule's finding on the same words
                found = [ev for ev in found if not any(ev.start < e1 and s0 < ev.end for s0, e1 in taken)]
                if not found:
                    continue
            if (rule.satisfied_by == "escalation" and facts.has_escalation) or (
                rule.satisfied_by == "cosign" and facts.cosigned
            ):
                satisfied.append(rule.id)
                continue
            violations.extend(
                Violation(rule=rule.id, severity=rule.severity, message=rule.message, evidence=ev)
                for ev in found
            )

        if facts.audience is not None and facts.recipient is not None:
            when = facts.now
            if when is None:
                raise InputError(
                    "at", "a time ('at' or 'written_at') is needed to judge consent for a recipient"
                )
            disclosure = privacy.check_disclosure(
                audience=facts.audience,
                sud_related=facts.sud_related or bool(self.sud_content(analysis)),
                participant_id=facts.participant_id,
                recipient=facts.recipient,
                consents=facts.consents,
                at=when,
                spec=self.spec.privacy,
                checks=self.checks,
            )
            violations.extend(disclosure.decision.violations)
            evaluated.extend(disclosure.decision.rules_evaluated)
            sent = {k: v for k, v in disclosure.to_dict().items() if k in _DISCLOSURE_KEYS}

        found_e, evaluated_e = check_crisis_escalation(facts, self.checks, self.spec.permissions.peer_roles)
        violations.extend(found_e)
        evaluated.extend(evaluated_e)

        summary: dict[str, Any] | None = None
        if facts.billable:
            found_b, evaluated_b, summary = billing.check_billing(facts, self.spec.billing, self.checks)
            violations.extend(found_b)
            evaluated.extend(evaluated_b)

        found_s, evaluated_s = supervision.check_supervision(facts, self.spec.supervision, self.checks)
        violations.extend(found_s)
        evaluated.extend(evaluated_s)
        return Decision.of(violations, evaluated, satisfied, billing=summary, disclosure=sent)

    def sud_content(self, text: str | Analysis) -> tuple[str, ...]:
        """The SUD terms in a note (``[privacy] sud_terms``), outside negation: what makes it
        SUD-related for Part 2 labels and consent whatever the author's flag says."""
        analysis = text if isinstance(text, Analysis) else self.analyze(text)
        classes = frozenset(self.spec.privacy.sud_terms)
        return tuple(
            dict.fromkeys(
                t.entry
                for t in analysis.terms_of(classes)
                if "negated" not in analysis.contexts(t.start, t.end)
            )
        )

    def sud_program(self, programs: Sequence[str]) -> bool:
        """Whether a referral's programs include a SUD program (``[privacy] sud_programs``, matched
        the way ``[assignment.programs]`` reads program names): its notes are Part 2 records."""
        keys = {encounter_checks.program_key(p, self.spec.assignment) for p in programs}
        return bool(keys & set(self.spec.privacy.sud_programs))

    # --- disclosure ----------------------------------------------------------------------------

    def check_disclosure(
        self,
        note: PeerNote | NoteFacts,
        recipient: str,
        consents: Sequence[ConsentRecord],
        at: datetime,
    ) -> privacy.Disclosure:
        """May ``note`` go to ``recipient`` at ``at``: audience, Part 2 consent, labels, notice."""
        if note.audience is None:
            raise InputError("audience", "required to decide a disclosure")
        return privacy.check_disclosure(
            audience=note.audience,
            sud_related=note.sud_related or bool(self.sud_content(note.text)),
            participant_id=note.participant_id,
            recipient=recipient,
            consents=consents,
            at=at,
            spec=self.spec.privacy,
            checks=self.checks,
        )

    def peer_view(
        self,
        *,
        task: Mapping[str, Any],
        service_request: Mapping[str, Any],
        patient: Mapping[str, Any] | None = None,
        supporting: Sequence[Mapping[str, Any]] = (),
    ) -> dict[str, Any]:
        """The minimum-necessary peer view of an inbound referral (FHIR dicts in, dicts out)."""
        return privacy.peer_view(
            task=task,
            service_request=service_request,
            patient=patient,
            supporting=supporting,
            spec=self.spec.minimum_necessary,
        )

    def fetchable_references(self, view: Mapping[str, Any]) -> list[str]:
        """References a reduced referral view still holds whose type the peer may see (Goal,
        Appointment, HealthcareService ...): read them and pass them back as ``supporting``."""
        return privacy.fetchable_references(view, self.spec.minimum_necessary)

    # --- roles and assignment ------------------------------------------------------------------

    def permits(
        self, role: Role | str, action: str, resource_type: str, categories: Sequence[str] = ()
    ) -> Permission:
        """May ``role`` ``action`` (create/read/update/delete/cosign/assign) a ``resource_type``
        (FHIR type or bridge record), with these category codes (e.g. ``laboratory``)?"""
        return permits(self.spec.permissions, role, action, resource_type, categories)

    def permits_resource(self, role: Role | str, action: str, resource: Mapping[str, Any]) -> Permission:
        """:meth:`permits` for a FHIR resource dict (type and categories read from it)."""
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise InputError("resourceType", "a FHIR resource needs a resourceType")
        return permits(self.spec.permissions, role, action, rtype, categories_of(resource))

    def check_assignment(self, peer: PeerWorker, participant: Participant, program: str) -> Decision:
        """Endorsement matches the program; no dual relationship (address, employer, household, family)."""
        return check_assignment(peer, participant, program, self.spec.assignment, self.checks)

    def check_encounter(
        self,
        encounter: PeerEncounter,
        *,
        peer: PeerWorker,
        participant: Participant,
        programs: Sequence[str] = (),
        usage: BillingUsage | None = None,
    ) -> Decision:
        """Judge a session before it is sent: the peer's endorsement against the referral's
        ``programs`` (when the rule file knows one of them), dual relationships, and, for a
        billable session, units, group size, non-billable activities and caps (given ``usage``)."""
        return encounter_checks.check_encounter(
            encounter,
            peer=peer,
            participant=participant,
            programs=programs,
            usage=usage,
            assignment=self.spec.assignment,
            billing_spec=self.spec.billing,
            checks=self.checks,
        )

    # --- billing -------------------------------------------------------------------------------

    def billing_units(self, minutes: int) -> int:
        return billing.units_for(minutes, self.spec.billing)
