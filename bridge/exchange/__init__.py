"""The exchange: outbound delivery, inbound referrals, and the closed loop (issue 5).

Application services for the web layer and the CLI live in :mod:`bridge.exchange.service`; the
web layer calls only :class:`~bridge.exchange.service.ExchangeService`. Every error is a
:mod:`bridge.errors` type (``InputError`` names the field; ``PolicyError`` carries violations;
``StateTransitionError`` for a forbidden referral action; ``NotFoundInStoreError`` for unknown ids;
``IdempotencyConflictError``; ``ExchangeError`` subclasses when the EHR failed synchronously).

API (all ``async`` unless noted; times are aware datetimes)::

    svc = await ExchangeService.open(settings, directory=directory)   # store (migrated), clients, policy
    await svc.start()            # background workers: outbound delivery + inbound sync
    await svc.close()            # stops workers, closes clients and store

    # outbound (POST /api/v1/encounters, /notes): policy check -> outbox -> 202 + tracking id
    sub = await svc.submit_encounter(encounter, actor=actor, idempotency_key=key)  # SubmissionStatus
    sub = await svc.submit_note(note, actor=actor, idempotency_key=key)
    decision = await svc.check_note(note, actor=actor)   # bridge.roles.Decision; dry run, nothing stored
    sub = await svc.submission(tracking_id)                       # GET /api/v1/submissions/{id}
    subs = await svc.list_submissions(states=None, limit=100)

    # inbound referrals (GET /api/v1/referrals, POST /api/v1/referrals/{id}/{action})
    refs = await svc.list_referrals(actor=actor, statuses=None, limit=100, offset=0)
    ref = await svc.get_referral(referral_id, actor=actor)         # audited as a view
    ref = await svc.act_on_referral(referral_id, "accept", actor=actor, reason=None, outputs=())
        # accept | decline | start | hold | resume | complete | fail | cancel; validated against the
        # SDOH CC state machine, then Task PUT with If-Match (on 412: refetch, re-apply if still
        # valid, else StateTransitionError). complete needs outputs=["Procedure/…"|"Encounter/…"].

    # FHIR notification endpoint (Subscriptions Backport rest-hook, or R4 criteria rest-hook);
    # the web layer checks the bearer token the Subscription carries in channel.header
    result = await svc.handle_notification(body_or_none, endpoint=None)   # NotificationResult
        # the endpoint is found from the Subscription reference in the notification; an empty
        # body (R4 criteria ping) makes the bridge poll

    counts = await svc.outbox_counts()      # {endpoint: {queued, sending, delivered, dead}}
    ready = await svc.readiness()           # {"store": (ok, reason), "<endpoint>": (ok, reason)}

Records: ``Actor(name, role, organization, source=None)`` (who is calling, from where: goes to the
audit log), ``SubmissionStatus`` (id, kind, record_id, endpoint, state, attempts, fhir_ids,
last_error, created_at, updated_at, delivered_at, warnings, replayed), ``NotificationResult``
(endpoint, kind, stored, gap).

Submitting a note needs its session submitted first (the note's Bundle carries the Encounter);
a note submitted again (co-signed, amended) replaces the EHR's copy. ``hold`` verdicts (a co-sign
or escalation missing) refuse with ``PolicyError``: nothing is queued until resolved.
Workers without the web layer: ``python -m bridge.exchange.run --config … --directory …``.
Participants, peers and consents come from a :class:`~bridge.exchange.directory.Directory`.

Pure modules (no I/O, no clock): ``task_state`` (state machine + Task update), ``retry`` (backoff
schedule), ``routing`` (which EHR). Workers: ``outbound`` (claims from the outbox, bounded
concurrency per endpoint, per-participant ordering, map -> send -> record ids | retry | dead
letter), ``inbound`` (subscription set-up, notifications, gap detection, catch-up polling, inbox).
"""

from __future__ import annotations
