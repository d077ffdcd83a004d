"""Mapping throughput: encounter-with-note transactions mapped + validated per second.

The baseline, run in the same process on the same machine, is ``json.dumps`` of the very same
finished Bundle dicts, so the ratio says how much mapping + R4B validation costs over merely
serialising the result. Usage: ``.venv/bin/python bench/mapping.py [--n 2000]``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta, timezone

from bridge.domain import (
    Activity,
    Audience,
    CertificationLevel,
    HumanName,
    Identifier,
    Participant,
    PeerEncounter,
    PeerNote,
    PeerWorker,
    Setting,
)
from bridge.mappers import MappingContext, build_submission_bundle, patient_reference_for

TZ = timezone(timedelta(hours=-6))


def _work(n: int) -> list[tuple[PeerEncounter, PeerNote]]:
    start = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
    out = []
    for i in range(n):
        begin = start + timedelta(hours=i)
        enc = PeerEncounter(
            id=f"enc-{i}",
            participant_id="pt-1",
            peer_id="peer-1",
            start=begin,
            end=begin + timedelta(minutes=45),
            setting=Setting.COMMUNITY,
            location_name="Drop-in center",
            activities=(Activity.RECOVERY_COACHING, Activity.RESOURCE_NAVIGATION),
        )
        note = PeerNote(
            id=f"note-{i}",
            participant_id="pt-1",
            author_id="peer-1",
            encounter_id=f"enc-{i}",
            audience=Audience.CARE_TEAM,
            text="Worked on the housing application and planned the next meeting. " * 8,
            written_at=begin + timedelta(hours=1),
            summary="Recovery coaching and resource navigation.",
            goal="Stable housing",
            progress="Application submitted",
        )
        out.append((enc, note))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="transactions per run (default 2000)")
    args = parser.parse_args()
    participant = Participant(
        id="pt-1",
        name=HumanName(given="Avery", family="Quinn"),
        identifiers={"clinic": Identifier(system="urn:oid:1.2.3.4.5.1", value="MRN-1")},
    )
    peer = PeerWorker(
        id="peer-1",
        name=HumanName(given="Jordan", family="Reyes"),
        credential="PRSS",
        certification_level=CertificationLevel.CERTIFIED,
        organization_id="harbor-recovery",
    )
    ctx = MappingContext(
        organization_id="harbor-recovery",
        organization_name="Harbor Recovery Community Organization",
        identifier_system="https://harbor-recovery.example.org/fhir/id",
        endpoint="clinic",
        patient_reference=patient_reference_for(participant, "clinic"),
        now=datetime(2026, 11, 26, 16, 30, tzinfo=TZ),
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
