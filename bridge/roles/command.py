"""``bridge rules check FILE [--jurisdiction XX] [--rules DIR] [--json]``: judge one note from a JSON file.
``bridge rules list [--jurisdiction XX] [--json]``: the rules in force, with severity and message.

The input is a JSON object with the fields of :class:`bridge.roles.NoteFacts`, e.g.
``{"role": "peer-specialist", "text": "...", "audience": "care-team", "kind": "progress"}``;
add ``"billable": true`` with the billing fields to apply documentation and billing rules,
``"certification_level"`` for supervision, ``"escalation_ref"`` when an escalation was made,
``"recipient"`` (+ ``"consents"``, ``"at"``) for disclosure. ``FILE`` may be ``-`` for stdin.

Exit status 0 whatever the verdict; unreadable or invalid input raises InputError (exit 2 in
``bridge.cli``), a broken rule file RuleFileError (exit 2). This is the CLI adapter of the policy
engine: it reads the input file; the decision itself stays pure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bridge.domain import parse
from bridge.errors import InputError
from bridge.roles.decision import Decision
from bridge.roles.facts import NoteFacts
from bridge.roles.loader import load_policy

DEFAULT_RULES_DIR = None  # the packaged rules (the repository's config/rules)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = sub.add_parser("rules", help="scope-of-practice and privacy rules")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="check a note (JSON file); print the decision")
    check.add_argument("file", help="JSON object with role, text, audience, kind, ... ('-' for stdin)")
    check.add_argument("--jurisdiction", default=None, help="overlay, e.g. TX, VA, NJ, MN (default: none)")
    check.add_argument("--rules", default=DEFAULT_RULES_DIR, help="rules folder (default: packaged)")
    check.add_argument("--json", action="store_true", help="print the decision as JSON")
    check.set_defaults(handler=run_check)
    listing = rules_sub.add_parser("list", help="list the rules in force (with a jurisdiction overlay)")
    listing.add_argument("--jurisdiction", default=None, help="overlay, e.g. TX, VA, NJ, MN (default: none)")
    listing.add_argument("--rules", default=DEFAULT_RULES_DIR, help="rules folder (default: packaged)")
    listing.add_argument("--json", action="store_true", help="print the rules as JSON")
    listing.set_defaults(handler=run_list)


def run_list(args: argparse.Namespace) -> int:
    policy = load_policy(args.rules, args.jurisdiction)
    rules = policy.describe()
    if args.json:
        print(
            json.dumps(
                {"jurisdiction": policy.jurisdiction, "files": list(policy.files), "rules": rules}, indent=2
            )
        )
        return 0
    print(f"rules in force: {', '.join(policy.files)}")
    for r in rules:
        print(f"  [{r['severity']:<5}] {r['rule']} ({r['kind']}): {r['message']}")
    return 0


def read_input(file: str) -> NoteFacts:
    try:
        raw = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputError("file", f"cannot read {file}: {reason}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError("file", f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:  # nested deeper than the parser recurses
        raise InputError("file", "not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict):
        raise InputError("file", "must hold a JSON object")
    return parse(NoteFacts, data)


def run_check(args: argparse.Namespace) -> int:
    facts = read_input(args.file)
    policy = load_policy(args.rules, args.jurisdiction)
    decision = policy.check_note(facts)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2))
    else:
        print(render(decision, policy.jurisdiction))
    return 0


def render(decision: Decision, jurisdiction: str | None) -> str:
    rules = "default" + (f" + {jurisdiction}" if jurisdiction else "")
    lines = [f"verdict: {decision.verdict.value}  (rules: {rules})"]
    for v in decision.violations:
        lines.append(f"  [{v.severity.value}] {v.rule}: {v.message}")
        if v.evidence is not None:
            lines.append(f'      "{v.evidence.text}" (characters {v.evidence.start}-{v.evidence.end})')
        elif v.field is not None:
            lines.append(f"      field: {v.field}")
    for rule in decision.satisfied:
        lines.append(f"  [ok] {rule}: matched, and already handled (escalation on file)")
    if decision.billing is not None:
        b: dict[str, Any] = decision.billing
        code = "-".join([b["code"], *b["modifiers"]])
        units = f"{b['units']} units, {b['billable_units']} billable"
        lines.append(f"  billing: {code}, {b['minutes']} min, {units}")
    if decision.disclosure is not None:
        sent = decision.disclosure
        labels = ", ".join(label["code"] for label in sent["labels"]) or "none"
        where = "may be sent" if sent["allowed"] else "may not be sent now"
        lines.append(f"  disclosure: {where}; labels: {labels}; consent: {sent['consent_id'] or '-'}")
        if sent["notice"]:
            lines.append(f"  notice: {sent['notice']}")
    evaluated = decision.rules_evaluated
    lines.append(f"  rules evaluated ({len(evaluated)}): {', '.join(evaluated)}")
    return "\n".join(lines)
