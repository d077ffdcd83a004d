"""Which EHR an outbound record goes to, pure.

A peer organization may serve several clinics: the record's explicit ``endpoint`` wins, else the
referral's source endpoint (answers go back where the referral came from), else the participant's
home endpoint, else the configured default.
"""

from __future__ import annotations

from collections.abc import Collection

from bridge.errors import InputError


def route(
    *,
    explicit: str | None,
    referral_endpoint: str | None,
    home_endpoint: str | None,
    default_endpoint: str | None,
    configured: Collection[str],
) -> str:
    for field, value in (
        ("endpoint", explicit),
        ("referral_id", referral_endpoint),
        ("participant.home_endpoint", home_endpoint),
        ("default_endpoint", default_endpoint),
    ):
        if value is None:
            continue
        if value not in configured:
            raise InputError(field, f"endpoint {value!r} is not configured")
        return value
    raise InputError("endpoint", "no endpoint: not given, no referral, no home endpoint and no default")


def partition_key(participant_id: str, endpoint: str) -> str:
    """Records of one participant at one EHR are delivered in order (a note after its encounter)."""
    return f"{participant_id}@{endpoint}"
