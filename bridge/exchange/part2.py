"""42 CFR Part 2 status of a note from facts its author cannot switch off."""

from __future__ import annotations

from bridge.domain import PeerNote
from bridge.exchange.context import ExchangeContext


async def part_2(ctx: ExchangeContext, note: PeerNote) -> PeerNote:
    """``note``, marked SUD-related when what it says (SUD words, ``[privacy] sud_terms``) or the
    program of the referral it serves (``[privacy] sud_programs``) makes it a Part 2 record, whatever
    its ``sud_related`` flag says."""
    if note.sud_related:
        return note
    policy = ctx.policy
    encounter = await ctx.encounter_of(note) if note.encounter_id else None
    referral = await ctx.referral(encounter.referral_id) if encounter is not None else None
    if policy.sud_content(note.text) or (referral is not None and policy.sud_program(referral.programs)):
        return note.model_copy(update={"sud_related": True})
    return note
