"""Part 2 labels come from what a note says, not from a flag its author can switch off (issue 10 #7).

Real sandbox EHR and SQLite store: a care-team note about methadone sent with ``sud_related=false``
reaches the chart with the 42 CFR Part 2 labels and notice; a note about housing does not."""

from __future__ import annotations

import httpx

from bridge.domain import Audience, Participant
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.store import Store
from bridge_dev.sandbox import Sandbox
from tests.exchange.support import ServiceFactory, World, settings_for

ACTOR = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery", source="127.0.0.1")
SUD_TEXT = "Drove him to his methadone clinic intake; we planned his rides for the first two weeks."


def security_codes(base_url: str, system: str, note_id: str) -> set[str]:
    r = httpx.get(f"{base_url}/DocumentReference", params={"identifier": f"{system}|{note_id}"}, timeout=30)
    r.raise_for_status()
    (entry,) = r.json()["entry"]
    return {c["code"] for c in entry["resource"].get("meta", {}).get("security", [])}


async def _world(
    sandbox_ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> tuple[World, Participant, ExchangeService, str]:
    """A participant known at the EHR, the exchange over ``store``, and the notes' identifier system."""
    w = World(sandbox_ehr)
    settings = settings_for(sandbox_ehr.base_url)
    svc = await make_service(settings, store, w.directory)
    return w, w.participant(), svc, f"{settings.organization.identifier_system}/note"


async def test_sud_text_is_labelled_part_2_whatever_the_flag_says(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w, p, svc, system = await _world(sandbox_ehr, sqlite_store, make_service)

    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    flagged_off = w.note(enc, text=SUD_TEXT, audience=Audience.CARE_TEAM, sud_related=False)
    sub = await svc.submissions.submit_note(flagged_off, actor=ACTOR)

    enc2 = w.encounter(p, 1)
    await svc.submissions.submit_encounter(enc2, actor=ACTOR)
    plain = w.note(enc2, audience=Audience.CARE_TEAM, sud_related=False)  # a note about housing
    control = await svc.submissions.submit_note(plain, actor=ACTOR)

    await svc.worker.drain("clinic")
    assert (await svc.submissions.get(sub.id)).state == "delivered"
    assert (await svc.submissions.get(control.id)).state == "delivered"
    assert {"R", "42CFRPart2"} <= security_codes(sandbox_ehr.base_url, system, flagged_off.id)
    assert "42CFRPart2" not in security_codes(sandbox_ehr.base_url, system, plain.id)
    gate = [e for e in await sqlite_store.audit.entries(subject=sub.id) if e.action == "privacy-gate"]
    assert gate and gate[0].detail is not None and "42CFRPart2" in gate[0].detail["labels"]


async def test_a_note_for_a_sud_program_referral_is_part_2_whatever_the_flag_says(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    from datetime import UTC, datetime

    from bridge.domain import Referral, ReferralStatus

    w, p, svc, system = await _world(sandbox_ehr, sqlite_store, make_service)
    ids = {}
    for program in ("Recovery support", "Housing navigation"):  # a SUD program, and a near miss
        ref = Referral(
            id=f"ref-{program[:4]}-{w.tag}",
            endpoint="clinic",
            task_id=f"task-{program[:4]}-{w.tag}",
            service_request_id=f"sr-{program[:4]}-{w.tag}",
            status=ReferralStatus.IN_PROGRESS,
            programs=(program,),
        )
        await sqlite_store.inbox.upsert(ref, now=datetime(2026, 11, 26, 15, 0, tzinfo=UTC))
        enc = w.encounter(p, len(ids), referral_id=ref.id)
        await svc.submissions.submit_encounter(enc, actor=ACTOR)
        note = w.note(enc, audience=Audience.CARE_TEAM, sud_related=False)  # text about housing only
        await svc.submissions.submit_note(note, actor=ACTOR)
        ids[program] = note.id
    await svc.worker.drain("clinic")
    assert "42CFRPart2" in security_codes(sandbox_ehr.base_url, system, ids["Recovery support"])
    assert "42CFRPart2" not in security_codes(sandbox_ehr.base_url, system, ids["Housing navigation"])
