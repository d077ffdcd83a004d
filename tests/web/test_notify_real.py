"""The notification route with R4 criteria subscriptions, which send an empty POST (no payload):
on the real stack (sandbox EHR without a Task topic, the bridge's own app serving
``/fhir/notify``, SQLite), a referral placed after start-up reaches the inbox through that ping,
and the route still refuses a ping without the token. Plus the framings of "empty" a server may use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient

from bridge.domain import Referral, ReferralStatus
from bridge.mappers import referral_id_for, referral_to_fhir
from bridge_dev.sandbox import Sandbox, free_port
from tests.web.conftest import NOTIFY_TOKEN, bearer
from tests.web.stack import Stack, place_referrals, serve, write_stack

Client = TestClient[Any, Any]


async def _eventually(check: Any, within: float = 20.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return bool(await check())


@pytest.fixture
async def live(fresh_ehr: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Client, Stack, str]]:
    port = free_port()
    stack = write_stack(fresh_ehr, tmp_path / "b", port=port)
    text = stack.config.read_text().replace("subscribe = false", "subscribe = true")
    text = text.replace(
        '[server]\nhost = "127.0.0.1"\n',
        '[server]\nhost = "127.0.0.1"\n'
        f'public_url = "http://127.0.0.1:{port}"\n'
        'notification_token_env = "BRIDGE_TEST_NOTIFY_TOKEN"\n',
    )
    assert "public_url" in text and "subscribe = true" in text
    stack.config.write_text(text)
    # a referral waiting before the bridge starts: only the start-up poll can bring it in
    [early] = await place_referrals(stack, fresh_ehr)
    async with serve(stack, port=port, BRIDGE_TEST_NOTIFY_TOKEN=NOTIFY_TOKEN) as client:
        yield client, stack, referral_id_for("clinic", early)


async def _place(ehr: httpx.AsyncClient, stack: Stack, tag: str, owner: str) -> str:
    """What the clinic's system does: a ServiceRequest and a Task owned by the peer organization."""
    ref = Referral(
        id=f"r-{tag}",
        endpoint="clinic",
        task_id=f"task-{tag}-{stack.participant_id}",
        service_request_id=f"sr-{tag}-{stack.participant_id}",
        status=ReferralStatus.REQUESTED,
        patient_id=stack.patient_id,
        reason="Wants a peer to meet after discharge",
    )
    for res in referral_to_fhir(ref, owner_ref=owner):
        res.get("meta", {}).pop("versionId", None)
        (await ehr.put(f"{res['resourceType']}/{res['id']}", json=res)).raise_for_status()
    return referral_id_for("clinic", ref.task_id)


async def _subscription(ehr: Sandbox) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=30) as http:
        bundle = (await http.get(f"{ehr.base_url}/Subscription")).json()
    subs = [e["resource"] for e in bundle.get("entry") or []]
    return subs[0] if len(subs) == 1 else None


async def test_criteria_subscription_ping_brings_the_referral_in(
    live: tuple[Client, Stack, str], fresh_ehr: Sandbox
) -> None:
    client, stack, early = live
    peer_key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}

    async def active() -> bool:
        sub = await _subscription(fresh_ehr)
        return sub is not None and sub["status"] == "active"

    assert await _eventually(active)
    sub = await _subscription(fresh_ehr)
    assert sub is not None
    # the sandbox has no Task topic: a classic R4 criteria subscription without payload
    assert sub["criteria"].startswith("Task?owner=Organization/") and "payload" not in sub["channel"]

    async def inbox() -> set[str]:
        resp = await client.get("/api/v1/referrals", headers=peer_key)
        assert resp.status == 200, await resp.text()
        return {r["id"] for r in (await resp.json())["items"]}

    # the referral placed before start-up is in: the start-up poll has run, and the next one is
    # 15 minutes away, so only the subscription's ping can bring in what the clinic places now
    async def early_in() -> bool:
        return early in await inbox()

    assert await _eventually(early_in)
    owner = sub["criteria"].split("owner=")[1]
    async with httpx.AsyncClient(base_url=fresh_ehr.base_url + "/", timeout=30) as ehr:
        wanted = await _place(ehr, stack, "late", owner)

    async def in_inbox() -> bool:
        return wanted in await inbox()

    assert await _eventually(in_inbox)
    metrics = await (await client.get("/metrics")).text()
    # the EHR's empty POST was answered 200 by the route (not 400 for a missing JSON body)
    assert 'bridge_http_requests_total{method="POST",route="/fhir/notify",status="200"}' in metrics
    assert 'route="/fhir/notify",status="400"' not in metrics

    # the token still guards the empty ping
    assert (await client.post("/fhir/notify")).status == 401
    assert (await client.post("/fhir/notify", headers=bearer("wrong"))).status == 401


@pytest.mark.parametrize(
    "framing",
    [
        {"data": b""},
        {"data": b"", "headers": {"Content-Type": "application/fhir+json"}},
        {"data": b"  \r\n"},
        {"chunked": True, "data": b""},
    ],
)
async def test_every_framing_of_an_empty_body_is_a_ping(
    client: Client, notifications: list[Any], framing: dict[str, Any]
) -> None:
    headers = bearer(NOTIFY_TOKEN) | framing.pop("headers", {})
    resp = await client.post("/fhir/notify", headers=headers, **framing)
    assert resp.status == 200, await resp.text()
    assert notifications == [None]


@pytest.mark.parametrize(("body", "status"), [(b"{not json", 400), (b"[1, 2]", 400), (b"null", 400)])
async def test_a_body_that_is_not_a_json_object_is_still_refused(
    client: Client, notifications: list[Any], body: bytes, status: int
) -> None:
    resp = await client.post("/fhir/notify", headers=bearer(NOTIFY_TOKEN), data=body)
    assert resp.status == status and (await resp.json())["code"] == "malformed_json"
    assert notifications == []


async def test_openapi_documents_the_optional_body(client: Client) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    post = doc["paths"]["/fhir/notify"]["post"]
    assert post["requestBody"]["required"] is False
    assert post["security"] == [{"notifyToken": []}] and "401" in post["responses"]
    # a criteria subscription with payload PUTs the resource: there the body is required
    put = doc["paths"]["/fhir/notify/{resource_type}/{resource_id}"]["put"]
    assert put["requestBody"]["required"] is True
