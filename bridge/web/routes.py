"""The route table: one list drives both the aiohttp router and the OpenAPI document.

Each :class:`Route` says who may call it (``action``; ``None`` is public), its body model and its
answers, so the document cannot drift from what is served (``tests/web/test_openapi.py`` checks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from bridge.domain import PeerEncounter, PeerNote, Referral
from bridge.exchange.task_state import PEER_ACTIONS
from bridge.web import handlers as h
from bridge.web.models import (
    Accepted,
    CheckResult,
    EscalationRequest,
    Health,
    HeldList,
    HeldNoteItem,
    OutboxList,
    ReferralActionRequest,
    ReferralList,
    ReturnRequest,
    SubmissionView,
)
from bridge.web.principal import Action

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Answer = type[BaseModel] | str  # a model (JSON) or a media type


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    action: Action | None = None
    body: type[BaseModel] | None = None
    responses: Mapping[int, Answer] = field(default_factory=dict)
    tag: str = "api"
    idempotent: bool = False  # honours Idempotency-Key
    security: str | None = None  # override: "notify" for the notification endpoint
    path_patterns: Mapping[str, str] = field(default_factory=dict)


_ID = r"^[A-Za-z0-9\-.]{1,64}$"

ROUTES: list[Route] = [
    Route(
        "GET",
        "/health",
        h.health,
        "health",
        "Liveness (always 200 while the process answers; the body shows the readiness checks)",
        responses={200: Health},
        tag="operations",
    ),
    Route(
        "GET",
        "/health/ready",
        h.ready,
        "ready",
        "Readiness: the store and each endpoint's circuit breaker (503 when degraded)",
        responses={200: Health, 503: Health},
        tag="operations",
    ),
    Route(
        "GET",
        "/metrics",
        h.metrics,
        "metrics",
        "Prometheus metrics",
        responses={200: "text/plain"},
        tag="operations",
    ),
    Route(
        "POST",
        "/api/v1/encounters",
        h.submit_encounter,
        "submit_encounter",
        "Queue a peer session for delivery as an Encounter",
        Action.SUBMIT_ENCOUNTER,
        PeerEncounter,
        {202: Accepted},
        idempotent=True,
    ),
    Route(
        "POST",
        "/api/v1/notes",
        h.submit_note,
        "submit_note",
        "Accept a peer note (scope and consent checked first): 202 queued, or 202 held with the "
        "reasons (a co-sign or an escalation missing); blocked notes answer 422 with reasons",
        Action.SUBMIT_NOTE,
        PeerNote,
        {202: Accepted},
        idempotent=True,
    ),
    Route(
        "POST",
        "/api/v1/notes/check",
        h.check_note,
        "check_note",
        "Dry run: the policy verdict and violations for a note; nothing is stored",
        Action.CHECK_NOTE,
        PeerNote,
        {200: CheckResult},
    ),
    Route(
        "GET",
        "/api/v1/notes/held",
        h.list_held,
        "list_held",
        "Held notes the calling supervisor may co-sign, with what holds them",
        Action.COSIGN_NOTE,
        responses={200: HeldList},
    ),
    Route(
        "GET",
        "/api/v1/notes/held/mine",
        h.list_my_held,
        "list_my_held",
        "The caller's own held notes (waiting for a co-sign or an escalation), with what holds them",
        Action.SUBMIT_NOTE,
        responses={200: HeldList},
    ),
    Route(
        "POST",
        "/api/v1/notes/{note_ref}/cosign",
        h.cosign_note,
        "cosign_note",
        "Co-sign a held note (tracking id or note id) as its supervisor: queued for delivery "
        "unless something else still holds it",
        Action.COSIGN_NOTE,
        responses={202: Accepted},
        path_patterns={"note_ref": r"^[A-Za-z0-9\-._]{1,64}$"},
    ),
    Route(
        "POST",
        "/api/v1/notes/{note_ref}/escalation",
        h.record_escalation,
        "record_escalation",
        "Record the escalation (Task or Communication) a risk-of-harm hold waits for",
        Action.ESCALATE_NOTE,
        EscalationRequest,
        {202: Accepted},
        path_patterns={"note_ref": r"^[A-Za-z0-9\-._]{1,64}$"},
    ),
    Route(
        "POST",
        "/api/v1/notes/{note_ref}/return",
        h.return_note,
        "return_note",
        "Return a held note to its author with a comment (the author's supervisor only); it stays "
        "held until the author submits it again",
        Action.COSIGN_NOTE,
        ReturnRequest,
        {200: HeldNoteItem},
        path_patterns={"note_ref": r"^[A-Za-z0-9\-._]{1,64}$"},
    ),
    Route(
        "GET",
        "/api/v1/submissions/{submission_id}",
        h.get_submission,
        "get_submission",
        "Delivery state and FHIR ids of a submission",
        Action.READ_SUBMISSION,
        responses={200: SubmissionView},
        path_patterns={"submission_id": r"^[A-Za-z0-9\-._]{1,64}$"},
    ),
    Route(
        "GET",
        "/api/v1/outbox",
        h.list_outbox,
        "list_outbox",
        "Outbox state for integrators (no note text)",
        Action.READ_OUTBOX,
        responses={200: OutboxList},
    ),
    Route(
        "GET",
        "/api/v1/referrals",
        h.list_referrals,
        "list_referrals",
        "Referrals in the peer view for the caller's organization",
        Action.READ_REFERRALS,
        responses={200: ReferralList},
    ),
    Route(
        "GET",
        "/api/v1/referrals/{referral_id}",
        h.get_referral,
        "get_referral",
        "One referral in the peer view",
        Action.READ_REFERRALS,
        responses={200: Referral},
        path_patterns={"referral_id": _ID},
    ),
    *[
        Route(
            "POST",
            f"/api/v1/referrals/{{referral_id}}/{a.value}",
            h.referral_action(a.value),
            f"referral_{a.value}",
            f"{a.value.capitalize()} a referral (updates the Task at the EHR)",
            Action.ACT_ON_REFERRAL,
            ReferralActionRequest,
            {200: Referral},
            idempotent=True,
            path_patterns={"referral_id": _ID},
        )
        for a in PEER_ACTIONS
    ],
    Route(
        "POST",
        "/fhir/notify",
        h.notify,
        "notify",
        "FHIR Subscription rest-hook notifications (token from the Subscription's channel header)",
        responses={200: "application/json"},
        tag="fhir",
        security="notify",
    ),
    Route(
        "PUT",
        "/fhir/notify/{resource_type}/{resource_id}",
        h.notify,
        "notify_resource",
        "R4 criteria subscription with payload: the changed resource, PUT to {endpoint}/{type}/{id}",
        responses={200: "application/json"},
        tag="fhir",
        security="notify",
        path_patterns={"resource_type": r"^[A-Z][A-Za-z]{1,63}$", "resource_id": r"^[A-Za-z0-9\-.]{1,64}$"},
    ),
]
