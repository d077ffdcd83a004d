"""JSON API handlers: parse, authorize, call the service, answer. No business logic here."""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bridge.domain import PeerEncounter, PeerNote, parse
from bridge.errors import ForbiddenError, InputError, NotAuthenticatedError, NotFoundInStoreError
from bridge.exchange.views import InboxItem, Submission
from bridge.observability import CONTENT_TYPE
from bridge.web.keys import (
    AUTHENTICATOR,
    DIRECTORY_MISSING,
    EXCHANGE,
    METRICS,
    NOTIFY_TOKEN,
    PRINCIPAL,
    SETTINGS,
)
from bridge.web.models import (
    Accepted,
    CheckResult,
    CheckStatus,
    EscalationRequest,
    Health,
    HeldList,
    HeldNoteItem,
    OutboxList,
    ReferralActionRequest,
    ReferralList,
    ReturnRequest,
    SkippedResource,
    SubmissionView,
    Violation,
    WrittenResource,
)
from bridge.web.principal import Action, Principal, actor_for, may_see_assignee
from bridge.web.requests import M, authorize, body, json_object

log = logging.getLogger("bridge.web")


def model_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, body=model.model_dump_json().encode(), content_type="application/json")


def submission_view(s: Submission) -> SubmissionView:
    return SubmissionView(
        id=s.id,
        kind=s.kind,
        record_id=s.record_id,
        endpoint=s.endpoint,
        state=s.state,
        attempts=s.attempts,
        fhir_ids=dict(s.fhir_ids),
        last_error=s.last_error,
        created_at=s.created_at,
        updated_at=s.updated_at,
        delivered_at=s.delivered_at,
        hold_rules=[str(v.get("rule")) for v in s.hold_reasons],
        warnings=[
            Violation(rule=str(w["rule"]), severity=str(w["severity"]), message=str(w["message"]))
            for w in s.warnings
        ],
        written=[
            WrittenResource(type=str(w["type"]), id=str(w["id"]), status=int(w["status"])) for w in s.written
        ],
        skipped=[SkippedResource(type=str(k["type"]), reason=str(k["reason"])) for k in s.skipped],
    )


def accepted(request: web.Request, s: Submission) -> web.Response:
    url = str(request.app.router["get_submission"].url_for(submission_id=s.id))
    body = Accepted(
        submission_id=s.id,
        state=s.state,
        status_url=url,
        replayed=s.replayed,
        hold_reasons=[Violation.model_validate(v) for v in s.hold_reasons],
        warnings=[Violation.model_validate(v) for v in s.warnings],
    )
    resp = model_response(body, status=202)
    resp.headers["Location"] = url
    return resp


# --- operations ---------------------------------------------------------------------------------


async def _checks(request: web.Request) -> Health:
    checks: dict[str, CheckStatus] = {}
    try:
        for name, (ok, detail) in (await request.app[EXCHANGE].readiness()).items():
            checks[name] = CheckStatus(ok=ok, detail=detail)
    except Exception as exc:  # readiness must answer even when what it probes is broken
        checks["service"] = CheckStatus(ok=False, detail=type(exc).__name__)
    # nobody but operators can act without an identity provider, unless a service (the peer app)
    # holds an API key of its own
    auth = request.app.get(AUTHENTICATOR)
    # an OpenID Provider (read at start-up, or the start failed) or an IdP's JWKS for bearer tokens
    signs_in = request.app[SETTINGS].identity_provider is not None or (auth is not None and auth.signs_in)
    services = any(k.role != "integrator" for k in request.app[SETTINGS].api_auth.api_keys)
    checks["identity_provider"] = CheckStatus(
        ok=signs_in or services,
        detail=None if signs_in else "no identity provider: nobody can sign in to /inbox",
    )
    missing = request.app.get(DIRECTORY_MISSING)
    if missing is not None:  # every submission would name an unknown participant
        checks["directory"] = CheckStatus(ok=False, detail="no directory file")
    ready = all(c.ok for c in checks.values())
    return Health(status="ok" if ready else "degraded", checks=checks)


async def health(request: web.Request) -> web.Response:
    """Liveness: answering at all means alive (200), whatever the store or the EHRs are doing; the
    body still shows the readiness checks. A liveness probe must not restart a bridge for an EHR outage."""
    return model_response(await _checks(request))


async def ready(request: web.Request) -> web.Response:
    """Readiness: the store answers and no endpoint's breaker is open, else 503."""
    body = await _checks(request)
    return model_response(body, 200 if body.status == "ok" else 503)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    exchange = request.app[EXCHANGE]
    for name, client in exchange.clients.items():
        breaker = client.status().breaker
        m.set_endpoint(
            name,
            breaker_open=breaker.state != "closed",
            failures=breaker.consecutive_failures,
            last_success=client.last_success,
        )
    try:
        counts = await exchange.outbox_counts()
        m.set_outbox(counts.items, counts.retried)
        now = datetime.now(UTC)
        for name in exchange.clients:
            oldest = counts.oldest_pending.get(name)
            m.set_backlog_age(name, (now - oldest).total_seconds() if oldest else 0.0)
    except Exception as exc:
        m.outbox_unavailable()
        log.warning("outbox counts unavailable for /metrics", extra={"error_type": type(exc).__name__})
    # the Prometheus text format's own content type (version=0.0.4), not a bare text/plain
    return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE})


# --- outbound -------------------------------------------------------------------------------------


async def submit_encounter(request: web.Request) -> web.Response:
    actor = authorize(request, Action.SUBMIT_ENCOUNTER)
    encounter = await authored(request, actor, PeerEncounter, "peer_id")
    key = request.headers.get("Idempotency-Key")
    s = await request.app[EXCHANGE].submissions.submit_encounter(
        encounter, actor=actor_for(actor), idempotency_key=key
    )
    log.info("encounter queued", extra={"submission_id": s.id, "record_id": encounter.id})
    return accepted(request, s)


async def submit_note(request: web.Request) -> web.Response:
    actor = authorize(request, Action.SUBMIT_NOTE)
    note = await authored(request, actor, PeerNote, "author_id")
    if note.cosigner_id is not None:
        check_cosigner(request, actor, note.cosigner_id)
    key = request.headers.get("Idempotency-Key")
    s = await request.app[EXCHANGE].submissions.submit_note(note, actor=actor_for(actor), idempotency_key=key)
    log.info("note accepted", extra={"submission_id": s.id, "record_id": note.id, "event": s.state})
    return accepted(request, s)


async def authored(request: web.Request, actor: Principal, model: type[M], field: str) -> M:
    """The body as ``model``, its author ``field`` filled in with the caller when left out: a peer
    submits as themselves (whether a named author is the caller is the exchange's check)."""
    data = await json_object(request)
    if field not in data and actor.practitioner_id is not None:
        data[field] = actor.practitioner_id
    return parse(model, data)


async def authorize_supervision(request: web.Request, action: Action, audited: str) -> Principal:
    """``authorize`` for co-sign and escalation, where a refusal is on record too (who, which
    submission, the deciding rule): the exchange records its own refusals, this the caller's role."""
    try:
        return authorize(request, action)
    except ForbiddenError as exc:
        principal: Principal | None = request.get(PRINCIPAL)
        if principal is not None:
            ref = request.match_info["note_ref"]
            supervision = request.app[EXCHANGE].supervision
            await supervision.record_refused(audited, ref, actor=actor_for(principal), error=exc)
        raise


async def cosign_note(request: web.Request) -> web.Response:
    """202 with the state after the co-sign: ``queued``, or still ``held`` (an escalation missing)."""
    actor = await authorize_supervision(request, Action.COSIGN_NOTE, "note.cosign")
    ref = request.match_info["note_ref"]
    # who may co-sign whose note (organization, the author's supervisor) is the exchange's call
    s = await request.app[EXCHANGE].supervision.cosign_note(ref, actor=actor_for(actor), at=datetime.now(UTC))
    log.info("note co-signed", extra={"submission_id": s.id, "event": s.state})
    return accepted(request, s)


async def record_escalation(request: web.Request) -> web.Response:
    actor = await authorize_supervision(request, Action.ESCALATE_NOTE, "note.escalation")
    req = await body(request, EscalationRequest)
    ref = request.match_info["note_ref"]
    s = await request.app[EXCHANGE].supervision.record_escalation(
        ref, req.escalation_ref, actor=actor_for(actor), at=datetime.now(UTC)
    )
    log.info("note escalation recorded", extra={"submission_id": s.id, "event": s.state})
    return accepted(request, s)


async def return_note(request: web.Request) -> web.Response:
    """Return a held note to its author with a comment: only the author's supervisor (the
    co-sign check); the note stays held, out of the queue, until the author submits it again."""
    actor = await authorize_supervision(request, Action.COSIGN_NOTE, "note.return")
    req = await body(request, ReturnRequest)
    h = await request.app[EXCHANGE].supervision.return_note(
        request.match_info["note_ref"], req.comment, actor=actor_for(actor), at=datetime.now(UTC)
    )
    log.info("note returned", extra={"submission_id": h.submission_id, "event": "returned"})
    item = HeldNoteItem(
        submission_id=h.submission_id,
        note=h.note,
        hold_reasons=[Violation.model_validate(v) for v in h.hold_reasons],
        held_since=h.held_since,
    )
    return model_response(item)


async def list_held(request: web.Request) -> web.Response:
    return await _held_list(request, authorize(request, Action.COSIGN_NOTE), mine=False)


async def list_my_held(request: web.Request) -> web.Response:
    """The caller's own held notes (waiting for a co-sign or an escalation): whoever writes notes."""
    return await _held_list(request, authorize(request, Action.SUBMIT_NOTE), mine=True)


async def _held_list(request: web.Request, actor: Principal, *, mine: bool) -> web.Response:
    items = [
        HeldNoteItem(
            submission_id=h.submission_id,
            note=h.note,
            hold_reasons=[Violation.model_validate(v) for v in h.hold_reasons],
            held_since=h.held_since,
        )
        for h in await request.app[EXCHANGE].supervision.list_held(actor=actor_for(actor), mine=mine)
    ]
    return model_response(HeldList(items=items))


def check_cosigner(request: web.Request, actor: Principal, cosigner_id: str) -> None:
    """A co-signed note is a supervisor's signature: only that supervisor may send it."""
    authorize(request, Action.COSIGN_NOTE)
    if actor.practitioner_id != cosigner_id:
        raise ForbiddenError("a note is co-signed only by the supervisor it names", rule="cosign.self")


async def check_note(request: web.Request) -> web.Response:
    actor = authorize(request, Action.CHECK_NOTE)
    note = await authored(request, actor, PeerNote, "author_id")
    decision = await request.app[EXCHANGE].submissions.check_note(note, actor=actor_for(actor))
    # hold (waits for a co-sign or an escalation) is reported as such: the note will be accepted
    # and held, and the peer should know before submitting
    return model_response(
        CheckResult(
            verdict=decision.verdict.value,
            violations=[Violation.model_validate(v.to_dict()) for v in decision.violations],
        )
    )


async def get_submission(request: web.Request) -> web.Response:
    authorize(request, Action.READ_SUBMISSION)
    s = await request.app[EXCHANGE].submissions.get(request.match_info["submission_id"])
    # re-check against the owning organization: ids are guessable
    authorize(request, Action.READ_SUBMISSION, organization=s.organization)
    return model_response(submission_view(s))


async def list_outbox(request: web.Request) -> web.Response:
    actor = authorize(request, Action.READ_OUTBOX)
    raw = request.query.get("limit", "100")
    # refused, not quietly replaced by 100: a caller asking for 5000 must learn it got fewer
    # (ASCII digits only: str.isdigit() and int() also take other scripts' digits)
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= 1000):
        raise InputError("limit", "must be a whole number from 1 to 1000")
    limit = int(raw)
    items = await request.app[EXCHANGE].submissions.list(organization=actor.organization, limit=limit)
    return model_response(OutboxList(items=[submission_view(s) for s in items]))


# --- referrals ------------------------------------------------------------------------------------


def _visible(request: web.Request, actor: Principal, item: InboxItem) -> bool:
    only_own = request.app[SETTINGS].api_auth.peers_see_only_own
    if item.organization != actor.organization:
        return False
    return may_see_assignee(actor, item.assignee, only_own=only_own)


async def list_referrals(request: web.Request) -> web.Response:
    actor = authorize(request, Action.READ_REFERRALS)
    items = await request.app[EXCHANGE].referrals.list(actor=actor_for(actor), limit=500)
    return model_response(ReferralList(items=[i.referral for i in items if _visible(request, actor, i)]))


async def get_referral(request: web.Request) -> web.Response:
    actor = authorize(request, Action.READ_REFERRALS)
    item = await load_referral(request, actor, request.match_info["referral_id"])
    return model_response(item.referral)


async def load_referral(request: web.Request, actor: Principal, referral_id: str) -> InboxItem:
    def allowed(item: InboxItem) -> None:
        authorize(request, Action.READ_REFERRALS, organization=item.organization)
        if not _visible(request, actor, item):
            # the same answer as a missing referral: do not confirm what a caller may not see
            raise NotFoundInStoreError(f"no referral {referral_id!r}")

    return await request.app[EXCHANGE].referrals.get(referral_id, actor=actor_for(actor), allowed=allowed)


def referral_action(action: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        actor = authorize(request, Action.ACT_ON_REFERRAL)
        req = await body(request, ReferralActionRequest)
        referral_id = request.match_info["referral_id"]
        item = await load_referral(request, actor, referral_id)
        authorize(request, Action.ACT_ON_REFERRAL, organization=item.organization)
        done = await request.app[EXCHANGE].referrals.act(
            referral_id,
            action,
            actor=actor_for(actor),
            reason=req.reason,
            outputs=req.outputs,
            at=datetime.now(UTC),
        )
        log.info("referral updated", extra={"referral_id": referral_id, "event": action})
        return model_response(done.referral)

    handler.__name__ = f"referral_{action}"
    return handler


# --- inbound notifications ---------------------------------------------------------------------


async def notify(request: web.Request) -> web.Response:
    """Subscription rest-hook target, authenticated with the token set on the Subscription."""
    expected = request.app[NOTIFY_TOKEN]
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # bytes that are not UTF-8 cannot be the token (surrogateescape keeps the comparison total)
    given = presented.strip().encode("utf-8", "surrogateescape")
    if not expected or scheme != "Bearer" or not hmac.compare_digest(given, expected.encode()):
        raise NotAuthenticatedError("notification token missing or wrong (Authorization: Bearer <token>)")
    # an R4 criteria subscription without payload sends an empty POST: a ping to go and look.
    # Empty means no bytes, whatever the framing (Content-Length: 0, an empty chunked body) or
    # the Content-Type a server put on it
    raw = await request.read() if request.can_read_body else b""
    payload = await json_object(request) if raw.strip() else None
    await request.app[EXCHANGE].inbound.handle_notification(payload)
    return web.Response(body=json.dumps({"status": "received"}).encode(), content_type="application/json")
