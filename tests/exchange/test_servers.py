"""The exchange end to end against every FHIR server (``fhir_server``: the sandbox EHR, the sandbox
in strict mode, Medplum's router in memory): sessions and notes written in full with literal
Patient references, the referral loop by polling, clinic changes seen, nothing lost to cut pages.
Issue 12: each of these failed on Medplum before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.domain import ReferralStatus
from bridge.exchange.inbound import InboundSettings
from bridge.exchange.views import Actor
from bridge.store import Store
from bridge_dev import samples
from bridge_dev.servers import FhirServer

from .support import ServiceFactory, World, count, create_patient, create_referral, settings_for

PEER = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery", source="10.1.2.3")


def _peer_of(world: World) -> Actor:
    """The session's servers are shared: each test's peer organization is its own."""
    org = f"org-{world.tag}"
    world.peer = world.peer.model_copy(update={"organization_id": org})
    world.directory.add(world.peer)
    return Actor(name="peer-app", role="peer-specialist", organization=org, source="10.1.2.3")


def _get(server: FhirServer, path: str, **params: str) -> dict[str, Any]:
    r = httpx.get(f"{server.base_url}/{path}", params=params, timeout=30)
    r.raise_for_status()
    return dict(r.json())


def _put(server: FhirServer, resource: dict[str, Any]) -> None:
    r = httpx.put(f"{server.base_url}/{resource['resourceType']}/{resource['id']}", json=resource, timeout=30)
    r.raise_for_status()


async def test_session_and_note_are_written_in_full_with_literal_references(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(fhir_server)
    p = w.participant()
    patient_id = _get(
        fhir_server, "Patient", identifier=f"{p.identifiers['clinic'].system}|{p.identifiers['clinic'].value}"
    )["entry"][0]["resource"]["id"]
    settings = settings_for(fhir_server.base_url, **fhir_server.endpoint)
    svc = await make_service(settings, sqlite_store, w.directory)
    enc = w.encounter(p)
    e = await svc.submissions.submit_encounter(enc, actor=PEER)
    n = await svc.submissions.submit_note(w.note(enc), actor=PEER)
    await svc.worker.drain("clinic")

    session, note = await svc.submissions.get(e.id), await svc.submissions.get(n.id)
    assert session.state == note.state == "delivered"
    assert {x["type"] for x in session.written} >= {"Organization", "Practitioner", "Encounter", "Procedure"}
    assert {x["type"] for x in note.written} >= {"DocumentReference", "Provenance"}
    assert session.skipped == note.skipped == []
    assert all(x["id"] for x in session.written + note.written)

    docref = _get(fhir_server, note.fhir_ids["DocumentReference"])
    assert docref["subject"]["reference"] == f"Patient/{patient_id}"
    found = _get(fhir_server, "DocumentReference", subject=f"Patient/{patient_id}")
    assert [x["resource"]["id"] for x in found.get("entry", [])] == [docref["id"]]
    encounter = _get(fhir_server, session.fhir_ids["Encounter"])
    assert encounter["subject"]["reference"] == f"Patient/{patient_id}"
    # the first delivery to a server read back what it wrote, and the reference held
    first = await sqlite_store.outbox.get(e.id)
    assert first.result is not None and first.result["references_ok"] is True

    # sent again (a lost answer): nothing new anywhere
    await svc.submissions.submit_encounter(enc, actor=PEER)
    await svc.worker.drain("clinic")
    system = f"{settings.organization.identifier_system}/encounter"
    assert count(fhir_server.base_url, "Encounter", f"{system}|{enc.id}") == 1


async def test_referral_loop_by_polling_and_clinic_changes_are_seen(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(fhir_server)
    p = w.participant(at_ehr=False)
    patient_id = create_patient(fhir_server.base_url, p)
    peer = _peer_of(w)
    settings = settings_for(fhir_server.base_url, org=peer.organization, **fhir_server.endpoint)
    svc = await make_service(
        settings, sqlite_store, w.directory, inbound=InboundSettings(allow_fast_poll=True)
    )
    owner = await svc.intake.organization_ref("clinic")
    clinician = {"reference": f"Practitioner/dr-{w.tag}", "display": "Dr. Sam Patel"}
    task_id = create_referral(
        fhir_server.base_url,
        owner_ref=owner,
        patient_id=patient_id,
        tag=w.tag,
        extra_sr={"requester": clinician},
    )
    other = create_referral(fhir_server.base_url, owner_ref=owner, patient_id=patient_id, tag="b" + w.tag)
    assert await svc.inbound.poll("clinic") == 2
    items = {i.referral.task_id: i.referral for i in await svc.referrals.list(actor=peer)}
    ref = items[task_id]

    await svc.referrals.act(ref.id, "accept", actor=peer)
    await svc.referrals.act(items[other].id, "accept", actor=peer)
    task = _get(fhir_server, f"Task/{task_id}")
    assert task["status"] == "accepted"
    assert task["businessStatus"]["coding"][0]["code"] == "3.0"
    await svc.referrals.act(ref.id, "start", actor=peer)

    enc = w.encounter(p, referral_id=ref.id)
    session = await svc.submissions.submit_encounter(enc, actor=peer)
    await svc.worker.drain("clinic")
    procedure = (await svc.submissions.get(session.id)).fhir_ids["Procedure"]
    # the Task lists the service as soon as it is delivered, not only at the end
    task = _get(fhir_server, f"Task/{task_id}")
    assert task["status"] == "in-progress" and task["businessStatus"]["coding"][0]["code"] == "5.1.4"
    assert [o["valueReference"]["reference"] for o in task["output"]] == [procedure]
    assert "Services delivered" in task["text"]["div"]
    # the note for the referral: the referring clinician is told it arrived
    note = w.note(enc)
    n = await svc.submissions.submit_note(note, actor=peer)
    await svc.worker.drain("clinic")
    assert (await svc.submissions.get(n.id)).state == "delivered"
    system = f"{settings.organization.identifier_system}/note-notification"
    found = _get(fhir_server, "Communication", identifier=f"{system}|{note.id}")
    [message] = [e["resource"] for e in found["entry"]]
    assert message["recipient"][0]["reference"] == clinician["reference"]
    assert message["about"][0]["reference"] == (await svc.submissions.get(n.id)).fhir_ids["DocumentReference"]
    done = (await svc.referrals.act(ref.id, "complete", actor=peer, outputs=[procedure])).referral
    assert done.status is ReferralStatus.COMPLETED
    task = _get(fhir_server, f"Task/{task_id}")
    assert task["status"] == "completed" and task["businessStatus"]["coding"][0]["code"] == "7.0"
    outputs = [o["valueReference"]["reference"] for o in task.get("output", [])]
    assert any(o.startswith("Procedure/") for o in outputs)

    # the clinic cancels the other accepted referral (its own version id, its own clock): seen
    cancelled = _get(fhir_server, f"Task/{other}")
    cancelled["status"] = "cancelled"
    cancelled.pop("lastModified", None)
    _put(fhir_server, cancelled)
    assert await svc.inbound.poll("clinic") >= 1
    entry = await sqlite_store.inbox.find_task("clinic", other)
    assert entry is not None and entry.referral.status is ReferralStatus.CANCELLED


@pytest.mark.parametrize("fhir_server", ["sekmet", "medplum"], indirect=True)
async def test_a_poll_loses_nothing_when_pages_are_cut(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """Issue 12 (5): 105 Tasks, 100 returned with total 105 and no next link: 3 never arrived.
    Here 205 Tasks: more than two of Medplum's 100-entry pages."""
    w = World(fhir_server)
    p = w.participant(at_ehr=False)
    patient_id = create_patient(fhir_server.base_url, p)
    peer = _peer_of(w)
    settings = settings_for(fhir_server.base_url, org=peer.organization, **fhir_server.endpoint)
    svc = await make_service(
        settings, sqlite_store, w.directory, inbound=InboundSettings(allow_fast_poll=True)
    )
    owner = await svc.intake.organization_ref("clinic")
    entries = []
    for i in range(205):
        sr, task = samples.referral_resources(f"{w.tag}-{i}", patient_id=patient_id, owner_ref=owner)
        for res in (sr, task):
            entries.append(
                {"resource": res, "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}}
            )
    async with httpx.AsyncClient(timeout=120) as http:
        r = await http.post(
            fhir_server.base_url,
            json={"resourceType": "Bundle", "type": "batch", "entry": entries},
            headers={"Content-Type": "application/fhir+json"},
        )
    r.raise_for_status()
    assert await svc.inbound.poll("clinic") == 205
    assert len(await svc.referrals.list(actor=peer, limit=1000)) == 205


@pytest.mark.parametrize("fhir_server", ["medplum"], indirect=True)
async def test_a_ping_polls_whatever_the_subscription_kind(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """Issue 12 (4): an empty POST to /fhir/notify answered 200 and polled nothing unless a
    criteria subscription existed (Medplum has none)."""
    w = World(fhir_server)
    peer = _peer_of(w)
    p = w.participant(at_ehr=False)
    patient_id = create_patient(fhir_server.base_url, p)
    settings = settings_for(fhir_server.base_url, org=peer.organization, **fhir_server.endpoint)
    inbound = InboundSettings(notify_url="http://127.0.0.1:9/fhir/notify", notify_token="t")
    svc = await make_service(settings, sqlite_store, w.directory, inbound=inbound)
    owner = await svc.intake.organization_ref("clinic")
    # a statement that does not list Subscription: no subscription is made (the server would
    # store it and never notify: silence, not a refusal to learn from); polling and pings it is
    assert (await svc.inbound.subscribe("clinic")).kind is None
    task_id = create_referral(fhir_server.base_url, owner_ref=owner, patient_id=patient_id, tag=w.tag)
    result = await svc.inbound.handle_notification(None)
    assert result.kind == "ping" and result.stored == 1
    assert await sqlite_store.inbox.find_task("clinic", task_id) is not None


def test_a_poll_interval_of_a_minute_is_kept_and_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 (4): ``bridge serve`` silently raised any interval below 15 minutes to 900 s."""
    from bridge.exchange.inbound import InboundSync

    sync = InboundSync(
        None,  # type: ignore[arg-type]  # no store needed to answer the interval
        {"clinic": None, "other": None},  # type: ignore[dict-item]
        lambda *a: None,  # type: ignore[arg-type,return-value]
        owner_for=lambda e: None,  # type: ignore[arg-type,return-value]
        clock=lambda: None,  # type: ignore[arg-type,return-value]
        settings=InboundSettings(poll_seconds={"clinic": 60, "other": 3600}),
    )
    assert sync.poll_interval("clinic") == 60 and sync.poll_interval("other") == 3600
    with caplog.at_level("WARNING", logger="bridge.exchange.inbound"):
        assert sync.warn_fast_polling() == ["clinic"]
    assert "polling every 60 s" in caplog.text


@pytest.mark.parametrize("fhir_server", ["medplum"], indirect=True)
async def test_refusals_are_learned_and_the_rest_still_goes(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """Run-time refusals: no transactions (405), no Encounter create (405), Provenance out of
    scope (403). The session and the note still go, as ordered conditional writes, and the
    submission says what was skipped and why; later submissions do not try again."""
    assert fhir_server.medplum is not None
    w = World(fhir_server)
    p = w.participant()
    settings = settings_for(fhir_server.base_url, **fhir_server.endpoint)
    svc = await make_service(settings, sqlite_store, w.directory)
    fhir_server.medplum.refuse(
        ("POST", "transaction", 405), ("POST", "Encounter", 405), ("POST", "Provenance", 403)
    )
    try:
        enc = w.encounter(p)
        e = await svc.submissions.submit_encounter(enc, actor=PEER)
        n = await svc.submissions.submit_note(w.note(enc), actor=PEER)
        await svc.worker.drain("clinic")
        session, note = await svc.submissions.get(e.id), await svc.submissions.get(n.id)
        second = await svc.submissions.submit_encounter(w.encounter(p, 1), actor=PEER)
        await svc.worker.drain("clinic")
        later = await svc.submissions.get(second.id)
    finally:
        fhir_server.medplum.refuse()
    assert session.state == note.state == later.state == "delivered"
    assert {x["type"] for x in session.written} == {"Organization", "Practitioner", "Procedure"}
    assert [(s["type"], "405" in s["reason"]) for s in session.skipped] == [("Encounter", True)]
    assert {x["type"] for x in note.written} >= {"DocumentReference"}
    assert {s["type"] for s in note.skipped} == {"Encounter", "Provenance"}
    assert any("403" in s["reason"] for s in note.skipped if s["type"] == "Provenance")
    # learned: the Encounter is left out of the next session before anything is sent
    caps = await svc.clients["clinic"].capabilities()
    assert not caps.supports_transaction and not caps.can_create("Encounter")
    assert not caps.can_create("Provenance") and "403" in caps.why_not("Provenance", "create")
    assert [s["type"] for s in later.skipped] == ["Encounter"]
    procedure = _get(fhir_server, later.fhir_ids["Procedure"])
    assert "encounter" not in procedure  # the reference to what was not written is dropped


@pytest.mark.parametrize("fhir_server", ["medplum"], indirect=True)
async def test_what_the_bridge_writes_passes_two_independent_validators(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """Conformance: every resource the bridge wrote (this test's session, co-signed note and
    referral loop, and whatever the session's other tests left on this server) passes the
    fhir.resources R4B models and Medplum's own validator (validateResource, in the Node glue)."""
    from fhir.resources.R4B import get_fhir_model_class

    assert fhir_server.medplum is not None
    w = World(fhir_server)
    p = w.participant()
    settings = settings_for(fhir_server.base_url, **fhir_server.endpoint)
    svc = await make_service(settings, sqlite_store, w.directory)
    enc = w.encounter(p)
    e = await svc.submissions.submit_encounter(enc, actor=PEER)
    n = await svc.submissions.submit_note(w.note(enc), actor=PEER)
    await svc.worker.drain("clinic")
    written = (await svc.submissions.get(e.id)).written + (await svc.submissions.get(n.id)).written
    assert len(written) >= 6
    for x in written:
        resource = _get(fhir_server, f"{x['type']}/{x['id']}")
        get_fhir_model_class(x["type"]).model_validate(resource)
        assert resource["text"]["status"] == "generated"
    report = fhir_server.medplum.validate()
    assert report["checked"] >= len(written)
    assert report["problems"] == []


async def test_strict_mode_is_really_strict(fhir_server: FhirServer) -> None:
    """The endpoint's headers reach the server: in strict mode an unknown search parameter is an
    error, where the lenient servers ignore it."""
    from bridge.clients import AsyncFhirClient
    from bridge.errors import FhirRequestError

    async with AsyncFhirClient(fhir_server.base_url, headers=fhir_server.headers) as ehr:
        if fhir_server.kind == "sekmet-strict":
            with pytest.raises(FhirRequestError):
                await ehr.search("Task", {"no-such-parameter": "x"})
        else:
            await ehr.search("Task", {"no-such-parameter": "x", "_summary": "count"})


@pytest.mark.parametrize("fhir_server", ["medplum"], indirect=True)
async def test_a_refused_task_update_is_said_not_hidden(
    fhir_server: FhirServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """What check says ('cannot be written back') is what happens: a Task update the server
    refuses is learned, and the peer's action is refused with the reason (nothing pretends)."""
    from bridge.errors import UnsupportedError

    assert fhir_server.medplum is not None
    w = World(fhir_server)
    peer = _peer_of(w)
    p = w.participant(at_ehr=False)
    patient_id = create_patient(fhir_server.base_url, p)
    settings = settings_for(fhir_server.base_url, org=peer.organization, **fhir_server.endpoint)
    svc = await make_service(
        settings, sqlite_store, w.directory, inbound=InboundSettings(allow_fast_poll=True)
    )
    owner = await svc.intake.organization_ref("clinic")
    task_id = create_referral(fhir_server.base_url, owner_ref=owner, patient_id=patient_id, tag=w.tag)
    await svc.inbound.poll("clinic")
    [item] = await svc.referrals.list(actor=peer)
    fhir_server.medplum.refuse(("PUT", "Task", 405))
    try:
        with pytest.raises(UnsupportedError, match="405"):
            await svc.referrals.act(item.referral.id, "accept", actor=peer)
        before = svc.clients["clinic"].requests
        with pytest.raises(UnsupportedError, match="405"):
            await svc.referrals.act(item.referral.id, "accept", actor=peer)
        assert svc.clients["clinic"].requests == before  # learned: not tried again
    finally:
        fhir_server.medplum.refuse()
    assert _get(fhir_server, f"Task/{task_id}")["status"] == "requested"
    findings = {f.name: f for f in (await svc.clients["clinic"].capabilities()).findings()}
    assert "cannot be written back" in findings["update-referrals"].reason
