"""HL7 DS4P privacy labels and the 42 CFR §2.32 notice.

Labels go in ``meta.security`` of every SUD-related resource sent out and in
``DocumentReference.securityLabel``: https://hl7.org/fhir/uv/security-label-ds4p/ . The notice text
follows 42 CFR §2.32 (https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2/subpart-C/section-2.32).
"""

from __future__ import annotations

from typing import Any, Final

from bridge.domain import Audience, PeerNote
from bridge.mappers.codes import V3_ACT_CODE, V3_CONFIDENTIALITY

# confidentiality R (restricted), sensitivity SUD, policy 42CFRPart2, refrain NORDSCLCD
# ("no redisclosure without consent directive"; spelling *unverified*, see the domain reference).
SUD_LABELS: Final[tuple[dict[str, str], ...]] = (
    {"system": V3_CONFIDENTIALITY, "code": "R", "display": "restricted"},
    {"system": V3_ACT_CODE, "code": "SUD", "display": "substance use disorder information sensitivity"},
    {"system": V3_ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"},
    {"system": V3_ACT_CODE, "code": "NORDSCLCD", "display": "no redisclosure without consent directive"},
)

PART2_NOTICE: Final = (
    "42 CFR part 2 prohibits unauthorized use or disclosure of these records. This record was "
    "disclosed from records protected by federal confidentiality rules (42 CFR part 2); any further "
    "disclosure is prohibited unless expressly permitted by the written consent of the person to whom "
    "it pertains or as otherwise permitted by 42 CFR part 2."
)

_LABELED_AUDIENCES: Final = frozenset({Audience.CARE_TEAM, Audience.RESTRICTED})


def labels_for(note: PeerNote) -> list[dict[str, Any]]:
    """The DS4P security labels a note (and the resources sent with it) must carry.

    Care-team and restricted notes about SUD get R, SUD, 42CFRPart2 and NORDSCLCD; anything else
    none (peer-team notes never leave the bridge at all).
    """
    if note.sud_related and note.audience in _LABELED_AUDIENCES:
        return sud_labels()
    return []


def sud_labels() -> list[dict[str, Any]]:
    """A fresh copy of the SUD label set (callers may put it into a dict they later mutate)."""
    return [dict(c) for c in SUD_LABELS]


def notice_for(note: PeerNote) -> str | None:
    """The §2.32 notice every Part 2-labelled note carries (care-team and restricted notes about
    SUD: every consent-based disclosure needs it), and every restricted note, else None."""
    return PART2_NOTICE if labels_for(note) or note.audience is Audience.RESTRICTED else None
