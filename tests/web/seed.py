"""Referrals in the real exchange's inbox, the way they arrive: a clinician's ServiceRequest + Task
at the sandbox EHR (owned by the peer organization), fetched by the inbound sync."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.mappers import referral_id_for
from bridge_dev import samples


def peer(practitioner_id: str, role: str = "peer-specialist") -> Actor:
    return Actor(f"practitioner:{practitioner_id}", role, "harbor-recovery", practitioner_id=practitioner_id)


async def referral(
    exchange: ExchangeService,
    *,
    name: tuple[str, str] = ("Avery", "Quinn"),
    accepted_by: str | None = None,
    started: bool = False,
    **task: Any,
) -> str:
    """A new referral in the inbox (its id) for a new patient called ``name`` (given, family);
    ``accepted_by`` a peer (then ``started``)."""
    tag = uuid.uuid4().hex[:10]
    owner = await exchange.intake.organization_ref("clinic")
    async with httpx.AsyncClient(base_url=exchange.clients["clinic"].base_url + "/", timeout=30) as ehr:
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": samples.MRN_SYSTEM, "value": f"MRN-{tag}"}],
            "name": [{"family": name[1], "given": [name[0]]}],
        }
        patient_id = (await ehr.post("Patient", json=patient)).raise_for_status().json()["id"]
        resources = samples.referral_resources(tag, patient_id=patient_id, owner_ref=owner, **task)
        for res in resources:
            (await ehr.put(f"{res['resourceType']}/{res['id']}", json=res)).raise_for_status()
    task_id = str(resources[-1]["id"])
    await exchange.inbound.fetch_task("clinic", task_id)
    rid = referral_id_for("clinic", task_id)
    if accepted_by is not None:
        await exchange.referrals.act(rid, "accept", actor=peer(accepted_by))
        if started:
            await exchange.referrals.act(rid, "start", actor=peer(accepted_by))
    return rid
