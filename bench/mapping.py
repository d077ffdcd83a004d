"""Mapping throughput: encounter-with-note transactions mapped + validated per second.

The baseline, run in the same process on the same machine, is ``json.dumps`` of the very same
finished Bundle dicts, so the ratio says how much mapping + R4B validation costs over merely
serialising the result. Usage: ``.venv/bin/python bench/mapping.py [--n 2000]``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta

from bridge.domain import PeerEncounter, PeerNote
from bridge.mappers import MappingContext, build_submission_bundle, patient_reference_for
from bridge_dev import samples


def _work(n: int) -> list[tuple[PeerEncounter, PeerNote]]:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=samples.CENTRAL)
    out = []
    for i in range(n):
        begin = start + timedelta(hours=i)
        enc = samples.encounter(
            f"enc-{i}", start=begin, end=begin + timedelta(minutes=45), location_name="Drop-in center"
        )
        note = samples.note(
            f"note-{i}",
            encounter_id=f"enc-{i}",
            text="Worked on the housing application and planned the next meeting. " * 8,
            written_at=begin + timedelta(hours=1),
            summary="Recovery coaching and resource navigation.",
            goal="Stable housing",
        )
        out.append((enc, note))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="transactions per run (default 2000)")
    args = parser.parse_args()
    participant = samples.participant("pt-1", "MRN-1", home_endpoint=None)
    peer = samples.certified_peer("peer-1", credential="PRSS")
    ctx = MappingContext(
        organization_id=samples.ORG_ID,
        organization_name=samples.ORG_NAME,
        identifier_system=samples.ORG_SYSTEM,
        endpoint="clinic",
        patient_reference=patient_reference_for(participant, "clinic"),
        now=datetime(2026, 11, 26, 16, 30, tzinfo=samples.CENTRAL),
    )
    work = _work(args.n)
    build_submission_bundle(ctx, encounter=work[0][0], participant=participant, peer=peer, note=work[0][1])

    t0 = time.perf_counter()
    bundles = [
        build_submission_bundle(ctx, encounter=enc, participant=participant, peer=peer, note=note)
        for enc, note in work
    ]
    mapped = time.perf_counter() - t0

    t0 = time.perf_counter()
    size = sum(len(json.dumps(b)) for b in bundles)
    dumped = time.perf_counter() - t0

    map_rate, dump_rate = args.n / mapped, args.n / dumped
    print(f"transactions: {args.n} (6 entries each, {size / args.n / 1024:.1f} KiB of JSON each)")
    print(f"mapped + validated (R4B): {map_rate:>10,.0f} transactions/s")
    print(f"json.dumps baseline:      {dump_rate:>10,.0f} transactions/s")
    print(
        f"ratio mapping / json.dumps: {map_rate / dump_rate:.3f} "
        f"(json.dumps is {dump_rate / map_rate:.1f}x faster)"
    )


if __name__ == "__main__":
    main()
