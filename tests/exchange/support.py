"""Exchange test helpers. Each test makes its own organization, patients and records (unique
ids), since the session's sandbox EHR is shared."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.config import Settings, settings_from_dict
from bridge.domain import (
    Activity,
    Audience,
    CertificationLevel,
    HumanName,
    Identifier,
    Participant,
    PeerEncounter,
    PeerNote,
    PeerWorker,
    Setting,
)
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.outbound import OutboundSettings
from bridge.exchange.service import ExchangeService
from bridge.sandbox import Sandbox
from bridge.store.testing import pg_reachable, pg_url

IN_CI = os.environ.get("CI", "").lower() == "true"
RULES = Path(__file__).resolve().parents[2] / "config" / "rules"
CENTRAL = timezone(timedelta(hours=-6))
MRN = "urn:oid:1.2.3.4.5.1"


def uid() -> str:
    return uuid.uuid4().hex[:10]


async def require_postgres() -> None:
    reason = await pg_reachable()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"PostgreSQL at {pg_url()} is unreachable in CI: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


def settings_for(base_url: str, *, org: str | None = None, **endpoint: Any) -> Settings:
    org = org or f"org-{uid()}"
    return settings_from_dict(
        {
            "organization": {
                "id": org,
                "name": "Harbor Recovery Community Organization",
                "identifier_system": "https://harbor-recovery.example.org/fhir/id",
            },
            "endpoints": {"clinic": {"base_url": base_url, "max_concurrency": 4, **endpoint}},
            "default_endpoint": "clinic",
        }
    )


class World:
    """One test's people: a participant with a Patient at the EHR, a peer, their records."""

    def __init__(self, ehr: Sandbox) -> None:
        self.ehr = ehr
        self.tag = uid()
        self.peer = PeerWorker(
            id=f"peer-{self.tag}",
            name=HumanName(given="Jordan", family="Reyes"),
            credential="CPRS",
            certification_level=CertificationLevel.CERTIFIED,
            organization_id="harbor-recovery",
        )
        self.directory = InMemoryDirectory(peers=[self.peer])
        self.participants: list[Participant] = []

    def participant(self, *, at_ehr: bool = True) -> Participant:
        n = len(self.participants)
        p = Participant(
            id=f"pt-{self.tag}-{n}",
            name=HumanName(given="Avery", family="Quinn"),
            identifiers={"clinic": Identifier(system=MRN, value=f"MRN-{self.tag}-{n}")},
            home_endpoint="clinic",
        )
        if at_ehr:
            create_patient(self.ehr.base_url, p)
        self.participants.append(p)
        self.directory.add(p)
        return p

    def encounter(self, p: Participant, n: int = 0, **kw: Any) -> PeerEncounter:
        fields: dict[str, Any] = {
            "id": f"enc-{p.id}-{n}",
            "participant_id": p.id,
            "peer_id": self.peer.id,
            "start": datetime(2026, 11, 26, 14, 0, tzinfo=CENTRAL),
            "end": datetime(2026, 11, 26, 14, 50, tzinfo=CENTRAL),
            "setting": Setting.COMMUNITY,
            "location_name": "Harbor drop-in center",
            "activities": (Activity.RECOVERY_COACHING,),
            "billable": False,
        } | kw
        return PeerEncounter(**fields)

    def note(self, enc: PeerEncounter, **kw: Any) -> PeerNote:
        fields: dict[str, Any] = {
            "id": f"note-{enc.id}",
            "participant_id": enc.participant_id,
            "author_id": self.peer.id,
            "encounter_id": enc.id,
            "audience": Audience.CARE_TEAM,
            "sud_related": False,
            "text": "Met at the drop-in center and worked on the housing application together.",
            "written_at": datetime(2026, 11, 26, 15, 10, tzinfo=CENTRAL),
        } | kw
        return PeerNote(**fields)


def create_patient(base_url: str, p: Participant) -> str:
    ident = p.identifiers["clinic"]
    r = httpx.post(
        f"{base_url}/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"system": ident.system, "value": ident.value}],
            "name": [{"family": p.name.family, "given": [p.name.given]}],
        },
        headers={"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["id"])


def count(base_url: str, rtype: str, identifier: str) -> int:
    r = httpx.get(f"{base_url}/{rtype}", params={"identifier": identifier, "_summary": "count"}, timeout=30)
    r.raise_for_status()
    return int(r.json()["total"])


FAST = OutboundSettings(
    lease_seconds=30,
    max_attempts=3,
    base_backoff_seconds=0.05,
    max_backoff_seconds=0.2,
    idle_poll_seconds=0.05,
)

ServiceFactory = Callable[..., Awaitable[ExchangeService]]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- inbound helpers -----------------------------------------------------------------------------

ST = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic"
TASK_TOPIC = "http://example.org/fhir/SubscriptionTopic/referral-task"


def create_task_topic(base_url: str) -> str:
    """The sandbox seeds no topic for Task: add one (R5 SubscriptionTopic extensions on a Basic)."""
    trigger = [
        {"url": "description", "valueMarkdown": "A Task was created or updated"},
        {"url": "resource", "valueUri": "http://hl7.org/fhir/StructureDefinition/Task"},
        {"url": "supportedInteraction", "valueCode": "create"},
        {"url": "supportedInteraction", "valueCode": "update"},
        {"url": "fhirPathCriteria", "valueString": "true"},
    ]
    filters = [
        {
            "url": f"{ST}.canFilterBy",
            "extension": [
                {"url": "resource", "valueUri": "Task"},
                {"url": "filterParameter", "valueString": name},
            ],
        }
        for name in ("owner", "status")
    ]
    basic = {
        "resourceType": "Basic",
        "id": "topic-referral-task",
        "modifierExtension": [{"url": f"{ST}.status", "valueCode": "active"}],
        "extension": [
            {"url": f"{ST}.url", "valueUri": TASK_TOPIC},
            {"url": f"{ST}.title", "valueString": "Referral Task changed"},
            {"url": f"{ST}.resourceTrigger", "extension": trigger},
            *filters,
        ],
        "code": {"coding": [{"system": "http://hl7.org/fhir/fhir-types", "code": "SubscriptionTopic"}]},
    }
    r = httpx.put(f"{base_url}/Basic/{basic['id']}", json=basic, timeout=30)
    r.raise_for_status()
    return TASK_TOPIC


def create_referral(
    base_url: str, *, owner_ref: str, patient_id: str, tag: str, extra_sr: dict[str, Any] | None = None
) -> str:
    """What a clinician's system does: a ServiceRequest, then a Task for it owned by the peer org."""
    from bridge.domain import Referral, ReferralStatus
    from bridge.mappers import referral_to_fhir

    ref = Referral(
        id=f"r-{tag}",
        endpoint="clinic",
        task_id=f"task-{tag}",
        service_request_id=f"sr-{tag}",
        status=ReferralStatus.REQUESTED,
        business_status="2.0",
        authored_on=datetime(2026, 11, 20, 9, 15, tzinfo=CENTRAL),
        requester="Dr. Sam Patel",
        patient_id=patient_id,
        reason="Wants support staying in recovery after discharge",
        priority="routine",
    )
    sr, task = referral_to_fhir(ref, owner_ref=owner_ref)
    sr.update(extra_sr or {})
    for res in (sr, task):
        res.get("meta", {}).pop("versionId", None)
        r = httpx.put(f"{base_url}/{res['resourceType']}/{res['id']}", json=res, timeout=30)
        r.raise_for_status()
    return str(task["id"])


class Listener:
    """A stand-in for the web layer's notification route: checks the token, hands the body over."""

    def __init__(self, handle: Callable[[Any], Awaitable[Any]], token: str) -> None:
        self.handle = handle
        self.token = token
        self.down = False
        self.received: list[str] = []
        self._runner: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir/notify"

    async def start(self) -> Listener:
        from aiohttp import web

        from bridge.sandbox import free_port

        async def notify(request: web.Request) -> web.Response:
            if self.down:
                return web.Response(status=503)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return web.Response(status=401)
            raw = await request.read()
            body = json.loads(raw) if raw.strip() else None
            result = await self.handle(body)
            self.received.append(result.kind)
            return web.json_response({"status": "received"})

        app = web.Application()
        app.router.add_post("/fhir/notify", notify)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = self.port or free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> bool:
    """Wait (generously) for an asynchronous outcome; the test asserts the outcome, not the time."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.05)
    return await check()
