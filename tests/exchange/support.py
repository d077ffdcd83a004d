"""Exchange test helpers. Each test makes its own organization, patients and records (unique
ids), since the session's sandbox EHR is shared."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from bridge.config import Settings, settings_from_dict
from bridge.domain import Activity, Participant, PeerEncounter, PeerNote
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.outbound import OutboundSettings
from bridge.exchange.wiring import ExchangeService
from bridge_dev import samples
from bridge_dev.sandbox import Sandbox
from bridge_dev.servers import FhirServer
from bridge_dev.stack import RULES_DIR, bridge_config
from bridge_dev.stores import require_postgres as require_postgres  # for the tests here

RULES = RULES_DIR


def uid() -> str:
    return uuid.uuid4().hex[:10]


def settings_for(base_url: str, *, org: str | None = None, **endpoint: Any) -> Settings:
    cfg = bridge_config(
        base_url,
        org=org or f"org-{uid()}",
        endpoint={"max_concurrency": 4, **endpoint},
        # the sample records have fixed dates: keep them inside the accepted window
        rules={"oldest_record_days": 36500},
    )
    return settings_from_dict(cfg)


class World:
    """One test's people: a participant with a Patient at the EHR, a peer, their records."""

    def __init__(self, ehr: Sandbox | FhirServer) -> None:
        self.ehr = ehr
        self.tag = uid()
        self.peer = samples.certified_peer(f"peer-{self.tag}")
        self.directory = InMemoryDirectory(peers=[self.peer])
        self.participants: list[Participant] = []

    def participant(self, *, at_ehr: bool = True) -> Participant:
        n = len(self.participants)
        p = samples.participant(f"pt-{self.tag}-{n}", f"MRN-{self.tag}-{n}")
        if at_ehr:
            create_patient(self.ehr.base_url, p)
        self.participants.append(p)
        self.directory.add(p)
        return p

    def encounter(self, p: Participant, n: int = 0, **kw: Any) -> PeerEncounter:
        fields: dict[str, Any] = {
            "participant_id": p.id,
            "peer_id": self.peer.id,
            "activities": (Activity.RECOVERY_COACHING,),
            "billable": False,
        } | kw
        return samples.encounter(f"enc-{p.id}-{n}", **fields)

    def note(self, enc: PeerEncounter, **kw: Any) -> PeerNote:
        fields: dict[str, Any] = {
            "participant_id": enc.participant_id,
            "author_id": self.peer.id,
            "encounter_id": enc.id,
        } | kw
        return samples.plain_note(f"note-{enc.id}", **fields)


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


def create_task_topic(base_url: str) -> str:
    """The sandbox seeds no topic for Task: add one (R5 SubscriptionTopic extensions on a Basic)."""
    r = httpx.put(f"{base_url}/Basic/topic-referral-task", json=samples.task_topic(), timeout=30)
    r.raise_for_status()
    return samples.TASK_TOPIC


def create_referral(
    base_url: str, *, owner_ref: str, patient_id: str, tag: str, extra_sr: dict[str, Any] | None = None
) -> str:
    """What a clinician's system does: a ServiceRequest, then a Task for it owned by the peer org."""
    sr, task = samples.referral_resources(tag, patient_id=patient_id, owner_ref=owner_ref)
    sr.update(extra_sr or {})
    for res in (sr, task):
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

        from bridge_dev.sandbox import free_port

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
