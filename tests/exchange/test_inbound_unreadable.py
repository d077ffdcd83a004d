"""A referral whose ServiceRequest cannot be read at the EHR (deleted, forbidden) is skipped and
audited; it does not stop the poll, so the referrals after it still reach the inbox."""

from __future__ import annotations

import httpx

from bridge.exchange.inbound import InboundSettings
from bridge.store import Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, create_patient, create_referral, settings_for


async def test_a_task_whose_service_request_is_gone_does_not_block_the_poll(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    patient_id = create_patient(sandbox_ehr.base_url, w.participant())
    inbound = InboundSettings(notify_url=None, notify_token=None, allow_fast_poll=True)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory, inbound=inbound)
    owner = await svc.intake.organization_ref("clinic")
    broken = create_referral(sandbox_ehr.base_url, owner_ref=owner, patient_id=patient_id, tag="a" + w.tag)
    async with httpx.AsyncClient(base_url=sandbox_ehr.base_url, timeout=30) as ehr:
        gone = (await ehr.get(f"/Task/{broken}")).raise_for_status().json()["focus"]["reference"]
        (await ehr.delete(f"/{gone}")).raise_for_status()
        assert (await ehr.get(f"/{gone}")).status_code in (404, 410)
    good = create_referral(sandbox_ehr.base_url, owner_ref=owner, patient_id=patient_id, tag="b" + w.tag)

    # it used to raise the 404 out of poll(): every later poll failed the same way, forever
    assert await svc.inbound.poll("clinic") == 1
    assert await sqlite_store.inbox.find_task("clinic", good) is not None
    assert await sqlite_store.inbox.find_task("clinic", broken) is None
    [skipped] = await sqlite_store.audit.entries(action="receive.skipped")
    assert (
        skipped.subject == f"Task/{broken}"
        and skipped.detail["status"] == 410
        and skipped.outcome == "skipped"
    )
    assert await svc.inbound.poll("clinic") == 0  # the cursor moved on; the good one is not stored twice


async def test_the_newest_skipped_task_is_audited_once_per_version(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    patient_id = create_patient(sandbox_ehr.base_url, w.participant())
    inbound = InboundSettings(notify_url=None, notify_token=None, allow_fast_poll=True)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory, inbound=inbound)
    owner = await svc.intake.organization_ref("clinic")
    broken = create_referral(sandbox_ehr.base_url, owner_ref=owner, patient_id=patient_id, tag=w.tag)
    async with httpx.AsyncClient(base_url=sandbox_ehr.base_url, timeout=30) as ehr:
        gone = (await ehr.get(f"/Task/{broken}")).raise_for_status().json()["focus"]["reference"]
        (await ehr.delete(f"/{gone}")).raise_for_status()
    # the cursor is "ge" the newest Task seen, so each poll reads this one again
    assert await svc.inbound.poll("clinic") == 0
    assert await svc.inbound.poll("clinic") == 0
    assert len(await sqlite_store.audit.entries(action="receive.skipped")) == 1
