"""Outbound: submit -> outbox -> transaction at the real sandbox EHR -> delivered, on both stores
(the first two on every FHIR server: the sandbox, the sandbox in strict mode, Medplum)."""

from __future__ import annotations

import pytest

from bridge.domain import Audience, Role
from bridge.errors import IdempotencyConflictError, InputError, PolicyError
from bridge.exchange.views import Actor
from bridge.store import OutboxState, Store
from bridge_dev import samples
from bridge_dev.medplum import MedplumServer
from bridge_dev.sandbox import Sandbox
from bridge_dev.servers import FhirServer, as_server

from .support import ServiceFactory, World, count, settings_for

ACTOR = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery", source="127.0.0.1")


async def test_encounter_delivered_once_and_ids_recorded(
    fhir_server: FhirServer, store: Store, make_service: ServiceFactory
) -> None:
    w = World(fhir_server)
    p = w.participant()
    settings = settings_for(fhir_server.base_url, **fhir_server.endpoint)
    svc = await make_service(settings, store, w.directory)
    enc = w.encounter(p)

    sub = await svc.submissions.submit_encounter(enc, actor=ACTOR, idempotency_key="k-1")
    assert sub.state == "queued" and sub.endpoint == "clinic" and sub.record_id == enc.id
    again = await svc.submissions.submit_encounter(enc, actor=ACTOR, idempotency_key="k-1")
    assert again.id == sub.id and again.replayed  # a retried POST: same tracking id, nothing queued
    with pytest.raises(IdempotencyConflictError):
        await svc.submissions.submit_encounter(w.encounter(p, 1), actor=ACTOR, idempotency_key="k-1")

    await svc.worker.drain("clinic")
    done = await svc.submissions.get(sub.id)
    assert done.state == "delivered" and done.attempts == 1
    assert done.fhir_ids["Encounter"].startswith("Encounter/")
    system = f"{settings.organization.identifier_system}/encounter"
    assert count(fhir_server.base_url, "Encounter", f"{system}|{enc.id}") == 1

    audit = await store.audit.entries(subject=sub.id)
    assert [e.action for e in audit] == ["submit", "disclose"]
    assert audit[0].actor == "peer-app" and audit[0].source == "127.0.0.1"
    assert audit[1].source == "clinic" and done.fhir_ids["Encounter"] in audit[1].detail["fhir"]


async def test_sending_twice_creates_nothing_new(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """What a lost lease or a crash after the send amounts to: the same item delivered again."""
    w = World(sandbox_ehr)
    p = w.participant()
    settings = settings_for(sandbox_ehr.base_url)
    svc = await make_service(settings, sqlite_store, w.directory)
    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)  # no idempotency key: queued twice
    await svc.worker.drain("clinic")
    states = [i.state for i in await sqlite_store.outbox.list()]
    assert states == [OutboxState.DELIVERED, OutboxState.DELIVERED]
    system = f"{settings.organization.identifier_system}/encounter"
    assert count(sandbox_ehr.base_url, "Encounter", f"{system}|{enc.id}") == 1


async def test_note_follows_its_encounter(
    fhir_server: FhirServer, store: Store, make_service: ServiceFactory
) -> None:
    w = World(fhir_server)
    p = w.participant()
    settings = settings_for(fhir_server.base_url, **fhir_server.endpoint)
    svc = await make_service(settings, store, w.directory)
    enc = w.encounter(p)
    with pytest.raises(InputError) as exc:
        await svc.submissions.submit_note(w.note(enc), actor=ACTOR)
    assert exc.value.field == "encounter_id"  # the session must be known first

    e = await svc.submissions.submit_encounter(enc, actor=ACTOR)
    # a note by someone other than the session's peer, or about someone else, is refused up front
    # (the mappers would refuse it at delivery, leaving a dead letter instead of a clear answer)
    other = w.participant()
    colleague = samples.certified_peer(f"colleague-{w.tag}")
    w.directory.add(colleague)
    for wrong, field in (
        ({"author_id": colleague.id}, "author_id"),
        ({"participant_id": other.id}, "participant_id"),
    ):
        with pytest.raises(InputError) as exc:
            await svc.submissions.submit_note(w.note(enc, **wrong), actor=ACTOR)
        assert exc.value.field == field
    n = await svc.submissions.submit_note(w.note(enc), actor=ACTOR)
    # the note is not claimable while its encounter is pending: one claim takes only the encounter
    claimed = await store.outbox.claim(owner="probe", now=svc.clock(), lease_seconds=1, limit=10)
    assert [c.id for c in claimed] == [e.id]
    await store.outbox.mark_retry(
        e.id, owner="probe", now=svc.clock(), next_attempt_at=svc.clock(), error="probe"
    )

    await svc.worker.drain("clinic")
    enc_done, note_done = await svc.submissions.get(e.id), await svc.submissions.get(n.id)
    assert enc_done.state == note_done.state == "delivered"
    assert enc_done.delivered_at is not None and note_done.delivered_at is not None
    assert enc_done.delivered_at <= note_done.delivered_at
    assert note_done.fhir_ids["DocumentReference"].startswith("DocumentReference/")
    system = f"{settings.organization.identifier_system}/note"
    assert count(fhir_server.base_url, "DocumentReference", f"{system}|{w.note(enc).id}") == 1


async def test_policy_gates_before_anything_is_queued(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    p = w.participant()
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    # Part 2: a restricted note without consent on file for the clinic is refused
    with pytest.raises(PolicyError) as exc:
        await svc.submissions.submit_note(
            w.note(enc, audience=Audience.RESTRICTED, sud_related=True), actor=ACTOR
        )
    assert "privacy.consent-required" in {v["rule"] for v in exc.value.violations}
    # out of scope: a dose instruction
    with pytest.raises(PolicyError):
        await svc.submissions.submit_note(
            w.note(enc, text="I told him to double his Suboxone dose to 16 mg starting tomorrow."),
            actor=ACTOR,
        )
    assert [i.kind for i in await sqlite_store.outbox.list()] == ["encounter"]


async def test_permanent_refusal_is_dead_lettered_with_the_outcome(
    medplum_ehr: MedplumServer, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(as_server("medplum", medplum=medplum_ehr))
    p = w.participant()
    svc = await make_service(settings_for(medplum_ehr.base_url), sqlite_store, w.directory)
    sub = await svc.submissions.submit_encounter(w.encounter(p), actor=ACTOR)
    medplum_ehr.refuse(("POST", "transaction", 422))  # a refusal of this request, not of the kind
    try:
        await svc.worker.drain("clinic")
    finally:
        medplum_ehr.refuse()
    item = await sqlite_store.outbox.get(sub.id)
    assert item.state is OutboxState.DEAD and item.attempts == 1
    assert item.last_error is not None and "422 (error processing)" in item.last_error
    assert item.last_outcome is not None and item.last_outcome["resourceType"] == "OperationOutcome"
    assert [e.action for e in await sqlite_store.audit.entries(subject=sub.id)] == ["submit", "dead-letter"]


async def test_unreachable_ehr_is_retried_then_dead_lettered(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    from bridge_dev.sandbox import free_port

    w = World(sandbox_ehr)
    p = w.participant()
    settings = settings_for(f"http://127.0.0.1:{free_port()}/fhir", retry_max_seconds=0.1)
    svc = await make_service(settings, sqlite_store, w.directory)
    sub = await svc.submissions.submit_encounter(w.encounter(p), actor=ACTOR)
    await svc.worker.drain("clinic")
    first = await sqlite_store.outbox.get(sub.id)
    assert first.state is OutboxState.QUEUED and first.attempts == 1
    assert first.last_error and "transport" in first.last_error
    assert first.next_attempt_at > first.updated_at  # backed off, not due at once
    svc.worker.start()
    # the worker keeps retrying on its schedule until the attempt budget (3) is used up
    for _ in range(200):
        item = await sqlite_store.outbox.get(sub.id)
        if item.state is OutboxState.DEAD:
            break
        await __import__("asyncio").sleep(0.05)
    assert item.state is OutboxState.DEAD and item.attempts == 3
    assert item.last_error and item.last_error.startswith("gave up after 3 attempts")


async def test_cosigned_note_replaces_the_ehr_copy(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    from datetime import datetime

    from bridge_dev import samples

    w = World(sandbox_ehr)
    p = w.participant()
    supervisor = samples.supervisor(f"sup-{w.tag}", npi=None, role=Role.PEER_SUPERVISOR)
    w.directory.add(supervisor)
    # whoever names a co-signer is that supervisor, of the bridge's organization (issue 10)
    settings = settings_for(sandbox_ehr.base_url, org=supervisor.organization_id)
    svc = await make_service(settings, sqlite_store, w.directory)
    signer = Actor(
        name=f"practitioner:{supervisor.id}",
        role=Role.PEER_SUPERVISOR.value,
        organization=supervisor.organization_id,
        practitioner_id=supervisor.id,
    )
    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    first = w.note(enc)
    await svc.submissions.submit_note(first, actor=ACTOR)
    await svc.worker.drain("clinic")
    cosigned = w.note(
        enc,
        cosigner_id=supervisor.id,
        cosigned_at=datetime(2026, 11, 27, 9, 0, tzinfo=samples.CENTRAL),
    )
    sub = await svc.submissions.submit_note(cosigned, actor=signer)
    await svc.worker.drain("clinic")
    assert (await svc.submissions.get(sub.id)).state == "delivered"

    import httpx

    system = f"{settings.organization.identifier_system}/note"
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(
            f"{sandbox_ehr.base_url}/DocumentReference", params={"identifier": f"{system}|{first.id}"}
        )
    found = r.json()
    assert found["total"] == 1  # replaced, not duplicated
    assert found["entry"][0]["resource"]["docStatus"] == "final"  # was preliminary before the co-sign


async def test_retried_note_submission_replays_after_it_was_queued(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """A client that lost the 202 for a note sends it again with the same key: same tracking id,
    even though the note is now known to the outbox (which marks later versions as updates)."""
    w = World(sandbox_ehr)
    p = w.participant()
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    first = await svc.submissions.submit_note(w.note(enc), actor=ACTOR, idempotency_key="note-key")
    again = await svc.submissions.submit_note(w.note(enc), actor=ACTOR, idempotency_key="note-key")
    assert again.id == first.id and again.replayed


async def test_readiness_reports_store_and_breaker(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    settings = settings_for(sandbox_ehr.base_url)
    svc = await make_service(settings, sqlite_store, w.directory)
    assert await svc.readiness() == {"store": (True, None), "endpoint:clinic": (True, None)}
    for _ in range(settings.endpoints["clinic"].breaker_failures):
        svc.clients["clinic"].breaker.record_failure()
    assert await svc.readiness() == {"store": (True, None), "endpoint:clinic": (False, "circuit open")}


async def test_open_breaker_does_not_use_up_attempts(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    """Nothing was sent while our breaker is open: the item waits for the breaker, attempts unchanged,
    so a long outage cannot dead-letter work that never left the bridge."""
    w = World(sandbox_ehr)
    p = w.participant()
    settings = settings_for(sandbox_ehr.base_url, breaker_failures=1, breaker_reset_seconds=600)
    svc = await make_service(settings, sqlite_store, w.directory)
    svc.clients["clinic"].breaker.record_failure()  # open
    sub = await svc.submissions.submit_encounter(w.encounter(p), actor=ACTOR)
    await svc.worker.drain("clinic")
    item = await sqlite_store.outbox.get(sub.id)
    assert item.state is OutboxState.QUEUED and item.attempts == 0
    assert item.last_error and item.last_error.startswith("[circuit_open]")
    # it is due again when the breaker half-opens (600 s), not at the usual short backoff
    assert (item.next_attempt_at - item.updated_at).total_seconds() > 500


async def test_consent_revoked_after_submission_stops_the_send(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    from datetime import UTC, datetime

    from bridge.domain import ConsentRecord

    w = World(sandbox_ehr)
    p = w.participant()
    consent = ConsentRecord(
        id=f"c-{w.tag}", participant_id=p.id, recipient="clinic", start=datetime(2026, 1, 1, tzinfo=UTC)
    )
    w.directory.add(consent)
    svc = await make_service(settings_for(sandbox_ehr.base_url), sqlite_store, w.directory)
    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    allowed = await svc.submissions.submit_note(
        w.note(enc, audience=Audience.RESTRICTED, sud_related=True), actor=ACTOR
    )
    await svc.worker.drain("clinic")
    assert (await svc.submissions.get(allowed.id)).state == "delivered"
    gate = [e for e in await sqlite_store.audit.entries(subject=allowed.id) if e.action == "privacy-gate"]
    assert gate[0].outcome == "ok" and gate[0].detail is not None and gate[0].detail["consent"] == consent.id
    assert "42CFRPart2" in gate[0].detail["labels"]

    enc2 = w.encounter(p, 1)
    await svc.submissions.submit_encounter(enc2, actor=ACTOR)
    later = await svc.submissions.submit_note(
        w.note(enc2, audience=Audience.RESTRICTED, sud_related=True), actor=ACTOR
    )
    w.directory.replace_consents(
        p.id, [consent.model_copy(update={"revoked_at": datetime(2026, 2, 1, tzinfo=UTC)})]
    )
    await svc.worker.drain("clinic")
    item = await sqlite_store.outbox.get(later.id)
    assert item.state is OutboxState.DEAD and item.last_error and "consent_required" in item.last_error
    actions = [(e.action, e.outcome) for e in await sqlite_store.audit.entries(subject=later.id)]
    assert actions == [("submit", "ok"), ("privacy-gate", "refused"), ("dead-letter", "failed")]
