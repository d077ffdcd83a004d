"""Documentation and billing checks for a billable peer note (HCPCS H0038, per 15 minutes).

Sources (see shared domain.md): Texas 26 TAC 301.361 for the documentation list; state Medicaid
manuals for caps (VA/NJ 16 units a day, VA 900 hours a year and groups of at most 10, TX 104
units per rolling 6 months and groups of at most 12). The numbers live in ``[billing]`` of the
rule files; this module is the arithmetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from bridge.domain import Modality
from bridge.roles.checks import Checks
from bridge.roles.decision import Violation
from bridge.roles.facts import NoteFacts
from bridge.roles.schema import BillingSpec


def units_for(minutes: int, spec: BillingSpec) -> int:
    """15-minute units: whole units, plus one for a remainder of at least ``partial_unit_minutes``.

    With the defaults (15 and 8) that is the midpoint rule: 7 min -> 0, 8 -> 1, 22 -> 1, 23 -> 2.
    Set ``partial_unit_minutes = unit_minutes`` for whole units only.
    """
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    whole, rest = divmod(minutes, spec.unit_minutes)
    return whole + (1 if rest >= spec.partial_unit_minutes else 0)


def business_days_between(start: dt.date, end: dt.date) -> int:
    """Weekdays after ``start`` up to and including ``end`` (0 when written the same day)."""
    if end <= start:
        return 0
    days = (end - start).days
    full_weeks, rest = divmod(days, 7)
    count = full_weeks * 5
    for i in range(1, rest + 1):
        if (start + dt.timedelta(days=full_weeks * 7 + i)).weekday() < 5:
            count += 1
    return count


def _present(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, tuple):
        return bool(value)
    return True


def check_billing(
    facts: NoteFacts, spec: BillingSpec, checks: Checks, *, skip: Collection[str] = ()
) -> tuple[list[Violation], list[str], dict[str, Any]]:
    """Required fields, units, caps, group size and billability of a billable note's session.
    ``skip``: check ids not to run (a session judged without its note skips the note's own)."""
    violations: list[Violation] = []
    evaluated: list[str] = []

    def run(check_id: str) -> bool:
        if check_id not in skip and checks.enabled(check_id):
            evaluated.append(check_id)
            return True
        return False

    if run("billing.missing-field"):
        for name in spec.required_fields:
            if not _present(facts.billing_field(name)):
                violations.append(checks.violation("billing.missing-field", field=name))
    minutes = facts.session_minutes
    units = units_for(minutes, spec) if minutes is not None else 0
    billable_units = units
    not_billable: list[str] = []

    if run("billing.not-billable") and facts.activities:
        excluded = {a.value for a in spec.not_billable_activities}
        not_billable = [a.value for a in facts.activities if a.value in excluded]
        if len(not_billable) == len(facts.activities):
            violations.append(checks.violation("billing.not-billable", activities=", ".join(not_billable)))
            billable_units = 0

    if run("billing.zero-units") and minutes is not None and units == 0:
        violations.append(
            checks.violation(
                "billing.zero-units", field="end", minutes=minutes, partial=spec.partial_unit_minutes
            )
        )

    if spec.group_size_max is not None and run("billing.group-size"):
        if (
            facts.modality is Modality.GROUP
            and facts.group_size is not None
            and facts.group_size > spec.group_size_max
        ):
            violations.append(
                checks.violation(
                    "billing.group-size", field="group_size", size=facts.group_size, cap=spec.group_size_max
                )
            )
            billable_units = 0

    usage = facts.usage
    if spec.daily_unit_cap is not None and run("billing.daily-cap"):
        room = max(spec.daily_unit_cap - usage.units_today, 0)
        if billable_units > room:
            billable_units = room
            violations.append(
                checks.violation("billing.daily-cap", cap=spec.daily_unit_cap, units=units, billable=room)
            )
    if spec.period_unit_cap is not None and run("billing.period-cap"):
        room = max(spec.period_unit_cap - usage.units_in_period, 0)
        if billable_units > room:
            billable_units = room
            violations.append(
                checks.violation(
                    "billing.period-cap",
                    cap=spec.period_unit_cap,
                    days=spec.period_days,
                    units=units,
                    billable=room,
                )
            )
    if spec.yearly_hour_cap is not None and run("billing.yearly-cap"):
        room_minutes = max(spec.yearly_hour_cap * 60 - usage.hours_in_year * 60, 0)
        room = int(room_minutes // spec.unit_minutes)
        if billable_units > room:
            billable_units = room
            violations.append(
                checks.violation("billing.yearly-cap", cap=spec.yearly_hour_cap, units=units, billable=room)
            )

    if spec.write_within_business_days is not None and run("billing.late-note"):
        written, served = facts.written_at, facts.service_date
        if written is not None and served is not None:
            late = business_days_between(served, written.date())
            if late > spec.write_within_business_days:
                violations.append(
                    checks.violation(
                        "billing.late-note",
                        field="written_at",
                        days=late,
                        limit=spec.write_within_business_days,
                    )
                )

    modifiers: list[str] = []
    if facts.modality is Modality.GROUP and spec.group_modifier:
        modifiers.append(spec.group_modifier)
    if facts.program and facts.program in spec.program_modifiers:
        modifiers.append(spec.program_modifiers[facts.program])
    summary = {
        "code": spec.code,
        "modifiers": modifiers,
        "minutes": minutes,
        "units": units,
        "billable_units": billable_units,
        "not_billable_activities": not_billable,
    }
    return violations, evaluated, summary
