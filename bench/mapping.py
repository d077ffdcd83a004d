"""Mapping throughput: encounter-with-note transactions mapped per second, with and without R4B validation.

Baselines in the same run on the same machine:

- ``json.dumps`` of the very same finished Bundle dicts (what merely serialising the result costs);
- the sandbox EHR's transaction write rate (``--ehr-n`` of these Bundles POSTed by raw httpx at
  concurrency 8, fresh records so every entry is a 201): the ratio mapped/s ÷ EHR/s says how
  far ahead of the EHR the mapping stays (issue 15: >= 5x, 10x as a stretch). ``--ehr-n 0`` skips it.

"as delivered" is what the outbound worker does by default (``[outbox] validate_fhir = false``);
"+ R4B validation" is the opt-in mode and what the tests and golden files check.
Usage: ``.venv/bin/python bench/mapping.py [--n 2000] [--ehr-n 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bridge.domain import PeerEncounter, PeerNote
from bridge.mappers import MappingContext, build_submission_bundle, patient_reference_for
from bridge_dev import samples
from bridge_dev.sandbox import sandbox


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


async def _ehr_rate(base_url: str, bodies: list[bytes], conc: int = 8) -> float:
    """Transactions/s the EHR writes (raw httpx, no mapping: the EHR's own rate)."""
    import httpx

    queue = list(reversed(bodies))
    headers = {"Content-Type": "application/fhir+json"}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=conc)) as http:

        async def worker() -> None:
            while queue:
                r = await http.post(base_url, content=queue.pop(), headers=headers)
                r.raise_for_status()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return len(bodies) / (time.perf_counter() - t0)


def _ehr(participant: object, ctx: MappingContext, peer: object, n: int) -> float:
    import httpx

    work = _work(n)
    bodies = [
        json.dumps(
            build_submission_bundle(ctx, encounter=enc, participant=participant, peer=peer, note=note)  # type: ignore[arg-type]
        ).encode()
        for enc, note in work
    ]
    with sandbox(Path(tempfile.mkdtemp(prefix="bench-mapping-"))) as ehr:
        ident = samples.participant("pt-1", "MRN-1", home_endpoint=None).identifiers["clinic"]
        patient = {"resourceType": "Patient", "identifier": [ident.model_dump()], "name": [{"family": "B"}]}
        httpx.post(f"{ehr.base_url}/Patient", json=patient, timeout=60).raise_for_status()
        return asyncio.run(_ehr_rate(ehr.base_url, bodies))


def _timed(fn: object, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = fn()  # type: ignore[operator]
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=2000, help="transactions per run (default 2000)")
    parser.add_argument("--ehr-n", type=int, default=300, help="transactions POSTed to the EHR (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per figure; the median is shown")
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

    def build(validate: bool) -> list[dict[str, object]]:
        return [
            build_submission_bundle(
                ctx, encounter=enc, participant=participant, peer=peer, note=note, validate=validate
            )
            for enc, note in work
        ]

    bundles = build(False)
    assert bundles == build(True)  # the same JSON either way
    fast = _timed(lambda: len(build(False)), args.repeat)
    full = _timed(lambda: len(build(True)), args.repeat)
    dump = _timed(lambda: sum(1 for b in bundles if json.dumps(b)), args.repeat)
    size = sum(len(json.dumps(b)) for b in bundles)

    kib = size / args.n / 1024
    print(f"transactions: {args.n} (6 entries each, {kib:.1f} KiB of JSON each), median of {args.repeat}")
    print(f"mapped, as delivered (no model check): {fast:>10,.0f} transactions/s")
    print(f"mapped + R4B validation (opt-in mode):  {full:>10,.0f} transactions/s")
    print(f"json.dumps baseline:                    {dump:>10,.0f} transactions/s")
    print(f"ratio to json.dumps: as delivered {fast / dump:.3f}, with validation {full / dump:.3f}")
    if args.ehr_n:
        ehr = _ehr(participant, ctx, peer, args.ehr_n)
        print(f"sandbox EHR transaction writes (raw httpx, c=8): {ehr:,.1f} transactions/s")
        print(
            f"ratio mapped / EHR: as delivered {fast / ehr:.1f}x, with R4B validation {full / ehr:.1f}x "
            "(target >= 5x, stretch 10x)"
        )


if __name__ == "__main__":
    main()
