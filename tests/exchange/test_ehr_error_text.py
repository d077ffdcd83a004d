"""The EHR's error text stays out of the audit log and the API (real sandbox EHR, SQLite and
PostgreSQL): the sandbox's OperationOutcome for an unresolvable patient reference echoes the
participant's MRN in its diagnostics. The outbox item keeps that OperationOutcome whole, for
operators (``bridge outbox show``); the item's last error, the dead-letter audit entry and the
submission view carry only the error code, the status and the issue severities/codes.

Since issue 12 the bridge finds the Patient by identifier itself (and writes a literal reference),
so a participant unknown at the EHR is refused by the bridge, naming the field, before anything is
sent; the same rule holds: no identifier in the error, the audit log or the API."""

from __future__ import annotations

import json

from bridge.exchange.views import Actor
from bridge.store import OutboxState, Store
from bridge_dev.sandbox import Sandbox

from .support import ServiceFactory, World, settings_for

ACTOR = Actor(name="peer-app", role="peer-specialist", organization="harbor-recovery", source="127.0.0.1")


async def test_diagnostics_stay_on_the_item_only(
    sandbox_ehr: Sandbox, store: Store, make_service: ServiceFactory
) -> None:
    w = World(sandbox_ehr)
    p = w.participant(at_ehr=False)  # no Patient at the EHR has this participant's identifier
    mrn = p.identifiers["clinic"].value
    svc = await make_service(settings_for(sandbox_ehr.base_url), store, w.directory)
    sub = await svc.submissions.submit_encounter(w.encounter(p), actor=ACTOR)
    await svc.worker.drain("clinic")

    item = await store.outbox.get(sub.id)
    assert item.state is OutboxState.DEAD
    expected = (
        "[invalid_input] participant.identifiers: no Patient there has the participant's identifier at clinic"
    )
    assert item.last_error == expected and mrn not in json.dumps(item.last_outcome)
    [dead] = await store.audit.entries(subject=sub.id, action="dead-letter")
    assert dead.detail is not None and dead.detail["error"] == expected
    assert mrn not in json.dumps([e.detail for e in await store.audit.entries(subject=sub.id)])
    # what GET /api/v1/submissions/{id} answers with
    assert (await svc.submissions.get(sub.id)).last_error == expected
