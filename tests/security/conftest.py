"""The attacks of issue 10, each on the real stack: the app as ``bridge serve`` builds it (workers
running) over the session's sandbox EHR, a SQLite file of the test's own and the rule files, with a
directory of a provisional peer and her supervisor, a certified peer, a second supervisor and a peer
of another organization. Tokens come from the web tests' identity provider key."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from bridge.store import AuditEntry, OutboxItem, open_store
from bridge_dev.sandbox import Sandbox
from tests.exchange.conftest import make_service, policy, sqlite_store
from tests.web.conftest import TokenFactory, bearer, idp_key, jwks, make_token
from tests.web.stack import Stack, add_peer, encounter_for, place_referrals, serve, write_stack

# the web tests' identity provider and the exchange tests' service factory, shared
__all__ = ["idp_key", "jwks", "make_service", "make_token", "policy", "sqlite_store"]

Client = TestClient[Any, Any]
OTHER_ORG = "elsewhere-recovery"
WRITTEN_AT = "2026-03-02T15:00:00-06:00"
NOTE_SYSTEM = "https://harbor-recovery.example.org/fhir/id/note"


@dataclass
class People:
    client: Client
    stack: Stack
    ehr: Sandbox
    make_token: TokenFactory
    certified: str  # a certified peer: her notes go out at once
    provisional: str  # her notes wait for her supervisor's co-sign
    supervisor: str  # the provisional peer's supervisor
    other_supervisor: str  # same organization, supervises nobody here
    outsider: str  # a peer of another organization (in the same directory)
    tasks: list[str] = field(default_factory=list)  # referrals placed at the EHR (Task ids)

    def token(self, who: str, role: str = "peer-specialist", org: str = "harbor-recovery") -> dict[str, str]:
        return bearer(self.make_token(role, org, practitioner_id=who))

    def encounter(self, peer: str, **extra: Any) -> dict[str, Any]:
        return {**encounter_for(self.stack), "id": f"enc-{uuid.uuid4().hex[:10]}", "peer_id": peer, **extra}

    def note(self, author: str, encounter_id: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"note-{uuid.uuid4().hex[:10]}",
            "participant_id": self.stack.participant_id,
            "author_id": author,
            "encounter_id": encounter_id,
            "audience": "care-team",
            "text": "Worked on the housing application; next step is a call to the benefits office.",
            "written_at": WRITTEN_AT,
            **extra,
        }

    async def session(self, peer: str, role: str = "peer-specialist") -> str:
        """A session held by ``peer``, submitted by ``peer``: its id."""
        enc = self.encounter(peer)
        resp = await self.client.post("/api/v1/encounters", json=enc, headers=self.token(peer, role))
        assert resp.status == 202, await resp.text()
        return str(enc["id"])

    async def submit_note(self, author: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        note = self.note(author, await self.session(author), **extra)
        resp = await self.client.post("/api/v1/notes", json=note, headers=self.token(author))
        assert resp.status == 202, await resp.text()
        return note, await resp.json()

    async def store_view(self) -> tuple[list[OutboxItem], list[AuditEntry]]:
        """Everything in the outbox and the audit log, read from the SQLite file."""
        store = await open_store(f"sqlite+aiosqlite:///{self.stack.store_file}")
        try:
            return await store.outbox.list(limit=10_000), await store.audit.entries(limit=100_000)
        finally:
            await store.close()

    async def outbox_ids(self) -> set[str]:
        return {i.id for i in (await self.store_view())[0]}

    async def audit_after(self, seq: int) -> list[AuditEntry]:
        return [e for e in (await self.store_view())[1] if e.seq > seq]

    async def last_seq(self) -> int:
        entries = (await self.store_view())[1]
        return entries[-1].seq if entries else 0

    async def state(self, sid: str) -> str:
        resp = await self.client.get(
            f"/api/v1/submissions/{sid}", headers=self.token(self.supervisor, "peer-supervisor")
        )
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["state"])

    async def wait_state(self, sid: str, wanted: str, *, within: float = 15.0) -> str:
        state = ""
        for _ in range(int(within / 0.1)):
            state = await self.state(sid)
            if state == wanted:
                break
            await asyncio.sleep(0.1)
        return state

    async def documents(self, note_id: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.get(
                f"{self.ehr.base_url}/DocumentReference", params={"identifier": f"{NOTE_SYSTEM}|{note_id}"}
            )
        return [e["resource"] for e in r.json().get("entry", [])]


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0) -> bool:
    for _ in range(int(within / 0.1)):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


@pytest.fixture
async def people(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> AsyncIterator[People]:
    async with open_people(sandbox_ehr, tmp_path, jwks, make_token) as p:
        yield p


@pytest.fixture
async def with_referral(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> AsyncIterator[People]:
    """:func:`people` with one referral placed for the peer organization."""
    async with open_people(sandbox_ehr, tmp_path, jwks, make_token, referrals=1) as p:
        yield p


async def task_status(p: People, task_id: str) -> str:
    """The Task's status at the EHR, read directly (what the clinic sees)."""
    async with httpx.AsyncClient(timeout=30) as http:
        return str((await http.get(f"{p.ehr.base_url}/Task/{task_id}")).json()["status"])


@asynccontextmanager
async def open_people(
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    make_token: TokenFactory,
    *,
    referrals: int = 0,
) -> AsyncIterator[People]:
    """The stack with its people; ``referrals`` placed at the EHR first (the start-up poll finds them)."""
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "bridge", port=0, jwks_file=jwks_file)
    tag = uuid.uuid4().hex[:8]
    sup = add_peer(stack, f"sup-{tag}", role="peer-supervisor", level="supervisor")
    other_sup = add_peer(stack, f"sup2-{tag}", role="peer-supervisor", level="supervisor")
    prov = add_peer(stack, f"prov-{tag}", level="provisional", supervisor_id=sup)
    outsider = add_peer(stack, f"out-{tag}", organization_id=OTHER_ORG)
    tasks = await place_referrals(stack, sandbox_ehr, referrals) if referrals else []
    async with serve(stack) as client:
        yield People(
            client, stack, sandbox_ehr, make_token, stack.peer_id, prov, sup, other_sup, outsider, tasks
        )
