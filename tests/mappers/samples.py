"""Sample peer-side records for the mapper tests (the shared ones in ``bridge_dev.samples``, whose
defaults the golden files were made from). Time is frozen at a non-UTC instant (US Central)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bridge.mappers import MappingContext, build_submission_bundle
from bridge_dev.samples import (
    CENTRAL,
    MRN_SYSTEM,
    ORG_ID,
    ORG_NAME,
    ORG_SYSTEM,
    cosigned_note,
    encounter,
    group_encounter,
    note,
    participant,
    peer,
    referral,
    supervisor,
)

__all__ = [
    "CENTRAL",
    "MRN_SYSTEM",
    "NOW",
    "ORG_SYSTEM",
    "bundle",
    "cosigned_note",
    "ctx",
    "encounter",
    "group_encounter",
    "note",
    "participant",
    "peer",
    "referral",
    "supervisor",
]

NOW = datetime(2026, 11, 26, 16, 30, tzinfo=CENTRAL)


def ctx(patient_reference: str = "Patient/pat-77", **kw: Any) -> MappingContext:
    fields: dict[str, Any] = {
        "organization_id": ORG_ID,
        "organization_name": ORG_NAME,
        "identifier_system": ORG_SYSTEM,
        "endpoint": "clinic",
        "patient_reference": patient_reference,
        "now": NOW,
    } | kw
    return MappingContext(**fields)


def bundle(**kw: Any) -> dict[str, Any]:
    """The sample session + note as one transaction; keywords replace any argument, ``ctx`` too."""
    args: dict[str, Any] = {
        "encounter": encounter(),
        "participant": participant(),
        "peer": peer(),
        "note": note(),
    } | kw
    return build_submission_bundle(args.pop("ctx", ctx()), **args)
