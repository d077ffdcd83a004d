"""The exchange: outbound delivery, inbound referrals, and the closed loop, one module per job.

The web layer and the CLI hold one :class:`~bridge.exchange.wiring.ExchangeService` and call its
jobs directly; every error is a :mod:`bridge.errors` type (``InputError`` names the field;
``PolicyError`` carries violations; ``StateTransitionError`` for a forbidden referral action;
``NotFoundInStoreError`` for unknown ids; ``IdempotencyConflictError``; ``ExchangeError``
subclasses when the EHR failed synchronously).

API (all ``async`` unless noted; times are aware datetimes; ``actor`` is a
:class:`~bridge.exchange.views.Actor`, who goes to the audit log)::

    svc = await ExchangeService.open(settings, directory=directory)   # store (migrated), clients, policy
    await svc.start()            # background workers: outbound delivery + inbound sync
    await svc.close()            # stops workers, closes clients and store

    # submissions.py (POST /api/v1/encounters, /notes): checks -> outbox -> 202 + tracking id
    sub = await svc.submissions.submit_encounter(encounter, actor=actor, idempotency_key=key)
    sub = await svc.submissions.submit_note(note, actor=actor, idempotency_key=key)   # queued | held
    decision = await svc.submissions.check_note(note, actor=actor)   # dry run, nothing stored
    sub = await svc.submissions.get(tracking_id)                      # GET /api/v1/submissions/{id}
    subs = await svc.submissions.list(organization=org, states=None, limit=100)

    # supervision.py: held notes (a co-sign or an escalation missing)
    sub = await svc.supervision.cosign_note(ref, actor=actor)         # ref: tracking id or note id
    sub = await svc.supervision.record_escalation(ref, "Task/…", actor=actor)
    held = await svc.supervision.list_held(actor=actor, mine=False)   # audited as a view

    # referrals.py (GET /api/v1/referrals, POST /api/v1/referrals/{id}/{action})
    items = await svc.referrals.list(actor=actor)                    # InboxItem: referral, org, assignee
    item = await svc.referrals.get(referral_id, actor=actor)          # audited as a view
    item = await svc.referrals.act(referral_id, "accept", actor=actor, reason=None, outputs=())
        # validated against the SDOH CC state machine (task_state.py), then Task PUT with If-Match
        # (on 412: refetch, re-apply if still valid, else StateTransitionError)

    # inbound.py: the FHIR notification endpoint (Subscriptions Backport or R4 criteria rest-hook)
    result = await svc.inbound.handle_notification(body_or_none)      # NotificationResult

    counts = await svc.outbox_counts()      # OutboxCounts: items per (endpoint, state), retries
    ready = await svc.readiness()           # {"store": (ok, reason), "endpoint:<name>": (ok, reason)}

Read models (views.py): ``Submission`` (one per outbox item: owner organization, state, FHIR ids,
``delivered_at``, warnings, hold reasons), ``HeldNote``, ``InboxItem``. The outbox carries an
``OutboxPayload`` (payload.py); ``delivery.py`` maps it at delivery time for the worker
(``outbound.py``); ``intake.py`` is what the inbound sync needs (the peer organization's reference
at each EHR, the minimum-necessary reduction). Pure modules: ``task_state`` (state machine),
``routing`` (which EHR); retries back off by ``bridge.clients.retry.backoff_seconds``.
Participants, peers and consents come from a :class:`~bridge.exchange.directory.Directory`.
Workers without the web layer: ``python -m bridge.exchange.run --config … --directory …``.
"""

from __future__ import annotations
