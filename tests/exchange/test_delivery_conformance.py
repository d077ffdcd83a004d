"""What the outbound worker sends passes the R4B models, though it no longer validates each send.

The worker maps with ``validate=False`` unless ``[outbox] validate_fhir = true`` (the check cost
more CPU than the rest of a delivery); this keeps the conformance it gave up at run time: the
Bundles the delivery path builds for sessions and notes (care-team and Part 2 restricted; the
co-signed form is in the golden files) are validated here with ``fhir.resources.R4B``, whole and
entry by entry, and are the very dicts the validating mode would send.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from bridge.domain import Audience, ConsentRecord
from bridge.exchange.views import Actor
from bridge.mappers.context import validated_bundle
from bridge.store import OutboxState, Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, settings_for

ACTOR = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery")


def _r4b_valid(bundle: dict[str, Any]) -> None:
    Bundle.model_validate(bundle)  # the whole Bundle through its model, nested resources included
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])


async def test_delivered_bundles_pass_the_r4b_models(
    sandbox_ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    p = w.participant()
    w.directory.add(
        ConsentRecord(
            id=f"c-{w.tag}", participant_id=p.id, recipient="clinic", start=datetime(2026, 1, 1, tzinfo=UTC)
        )
    )
    settings = settings_for(sandbox_ehr.base_url)
    assert settings.outbox.validate_fhir is False  # the default: no model check per send
    svc = await make_service(settings, store, w.directory)
    first, second = w.encounter(p, 0), w.encounter(p, 1)
    now = datetime.now(UTC)
    await svc.submissions.submit_encounter(first, actor=ACTOR)
    await svc.submissions.submit_encounter(second, actor=ACTOR)
    await svc.submissions.submit_note(w.note(first), actor=ACTOR)
    await svc.submissions.submit_note(
        w.note(second, audience=Audience.RESTRICTED, sud_related=True), actor=ACTOR
    )

    items = await store.outbox.list(states=[OutboxState.QUEUED])
    assert len(items) == 4
    for item in items:
        sent = dict((await svc.delivery.prepare(item, now)).bundle)
        _r4b_valid(sent)
        assert validated_bundle(sent) == sent  # what the validating mode would have sent, unchanged

    await svc.worker.drain("clinic")
    assert [i.state for i in await store.outbox.list()] == [OutboxState.DELIVERED] * 4


async def test_the_opt_in_mode_validates_and_sends_the_same_bundle(
    sandbox_ehr: Sandbox, sqlite_store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    p = w.participant()
    plain = settings_for(sandbox_ehr.base_url)
    checked = plain.model_copy(update={"outbox": plain.outbox.model_copy(update={"validate_fhir": True})})
    svc = await make_service(checked, sqlite_store, w.directory)
    enc = w.encounter(p)
    await svc.submissions.submit_encounter(enc, actor=ACTOR)
    await svc.submissions.submit_note(w.note(enc), actor=ACTOR)
    now = datetime.now(UTC)
    unchecked = await make_service(plain, sqlite_store, w.directory)
    for item in await sqlite_store.outbox.list(states=[OutboxState.QUEUED]):
        checked_bundle = (await svc.delivery.prepare(item, now)).bundle
        assert checked_bundle == (await unchecked.delivery.prepare(item, now)).bundle
    await svc.worker.drain("clinic")
    assert [i.state for i in await sqlite_store.outbox.list()] == [OutboxState.DELIVERED] * 2
