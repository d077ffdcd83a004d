"""The HTTP layer: errors, request ids, health, metrics, idempotency, the notification endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.errors import StoreError
from bridge.exchange.wiring import ExchangeService
from tests.web import payloads
from tests.web.conftest import API_KEYS, NOTIFY_TOKEN, TokenFactory, bearer

Client = TestClient[Any, Any]
BLOCKED = "Told her to cut her dose to 8 mg."  # content.medication-change: block
BLOCKED_WORDS = "cut her dose to 8 mg"


async def _submissions(exchange: ExchangeService) -> int:
    return len(await exchange.submissions.list())


async def test_health_reports_each_check(
    client: Client, exchange: ExchangeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok" and body["checks"]["store"]["ok"] is True
    assert (await client.get("/health/ready")).status == 200

    async def down(**_: Any) -> dict[str, int]:
        raise StoreError("database is locked")

    monkeypatch.setattr(exchange.store.outbox, "counts", down)
    resp = await client.get("/health/ready")
    assert resp.status == 503
    assert (await resp.json())["checks"]["store"] == {"ok": False, "detail": "store_failed"}
    live = await client.get("/health")  # alive all the same: a probe must not restart it for this
    assert live.status == 200 and (await live.json())["status"] == "degraded"


async def test_metrics_exports_outbox_and_http_series(client: Client, make_token: TokenFactory) -> None:
    await client.post("/api/v1/encounters", json=payloads.encounter(), headers=bearer(make_token()))
    text = await (await client.get("/metrics")).text()
    # this session and the two the notes document
    assert 'bridge_outbox_items{endpoint="clinic",state="queued"} 3.0' in text
    assert 'bridge_http_requests_total{method="POST",route="/api/v1/encounters",status="202"} 1.0' in text


async def test_request_id_is_echoed_or_minted(client: Client) -> None:
    resp = await client.get("/health", headers={"X-Request-Id": "abc-12345678"})
    assert resp.headers["X-Request-Id"] == "abc-12345678"
    resp = await client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert resp.headers["X-Request-Id"] != "bad id with spaces" and len(resp.headers["X-Request-Id"]) == 32


async def test_malformed_json_is_400_with_code(client: Client, make_token: TokenFactory) -> None:
    for raw in (b"{not json", b"[1, 2]"):
        resp = await client.post("/api/v1/encounters", data=raw, headers=bearer(make_token()))
        assert resp.status == 400
        body = await resp.json()
        assert body["code"] == "malformed_json" and body["request_id"] == resp.headers["X-Request-Id"]


async def test_invalid_field_is_422_naming_it(client: Client, make_token: TokenFactory) -> None:
    bad = payloads.encounter(end="2026-03-02T13:00:00-06:00")
    resp = await client.post("/api/v1/encounters", json=bad, headers=bearer(make_token()))
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "invalid_input" and body["field"] == "end"
    resp = await client.post(
        "/api/v1/encounters", json=payloads.encounter(setting="moon"), headers=bearer(make_token())
    )
    assert (await resp.json())["field"] == "setting"


async def test_unknown_route_and_method_answer_json(client: Client) -> None:
    resp = await client.get("/api/v1/nope")
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    resp = await client.delete("/api/v1/encounters")
    assert resp.status == 405 and (await resp.json())["code"] == "method_not_allowed"


async def test_scope_violation_is_422_with_reasons_and_nothing_queued(
    client: Client, make_token: TokenFactory, exchange: ExchangeService
) -> None:
    before = await _submissions(exchange)
    resp = await client.post("/api/v1/notes", json=payloads.note(text=BLOCKED), headers=bearer(make_token()))
    assert resp.status == 422
    body = await resp.json()
    assert body["code"] == "scope_violation"
    assert body["violations"][0]["rule"] == "content.medication-change"
    assert await _submissions(exchange) == before


async def test_check_note_answers_verdict_without_storing(
    client: Client, make_token: TokenFactory, exchange: ExchangeService
) -> None:
    before = await _submissions(exchange)
    resp = await client.post(
        "/api/v1/notes/check", json=payloads.note(text=BLOCKED), headers=bearer(make_token())
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["verdict"] == "block" and BLOCKED_WORDS in body["violations"][0]["evidence"]["text"]
    assert await _submissions(exchange) == before


async def test_submission_202_then_status(client: Client, make_token: TokenFactory) -> None:
    token = make_token()
    resp = await client.post("/api/v1/encounters", json=payloads.encounter(), headers=bearer(token))
    assert resp.status == 202
    body = await resp.json()
    assert resp.headers["Location"] == body["status_url"]
    status = await client.get(body["status_url"], headers=bearer(token))
    assert status.status == 200
    assert (await status.json())["state"] == "queued"
    missing = await client.get("/api/v1/submissions/sub-none", headers=bearer(token))
    assert missing.status == 404


async def test_idempotency_key_replays_and_refuses_reuse(
    client: Client, make_token: TokenFactory, exchange: ExchangeService
) -> None:
    before = await _submissions(exchange)
    token = make_token()
    enc = payloads.encounter()
    headers = {**bearer(token), "Idempotency-Key": "k-1"}
    first = await client.post("/api/v1/encounters", json=enc, headers=headers)
    again = await client.post("/api/v1/encounters", json=enc, headers=headers)
    assert first.status == again.status == 202
    assert await first.json() == await again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await _submissions(exchange) == before + 1
    other = await client.post("/api/v1/encounters", json=payloads.encounter(), headers=headers)
    assert other.status == 409 and (await other.json())["code"] == "idempotency_conflict"
    # another caller may use the same key for its own request
    mine = await client.post(
        "/api/v1/encounters",
        json=payloads.encounter(peer_id="peer-2"),  # their own session
        headers={**bearer(make_token(practitioner_id="peer-2")), "Idempotency-Key": "k-1"},
    )
    assert mine.status == 202 and await _submissions(exchange) == before + 2


async def test_refused_request_does_not_burn_the_key(client: Client, make_token: TokenFactory) -> None:
    headers = {**bearer(make_token()), "Idempotency-Key": "k-2"}
    bad = await client.post("/api/v1/encounters", json=payloads.encounter(setting="moon"), headers=headers)
    assert bad.status == 422
    good = await client.post("/api/v1/encounters", json=payloads.encounter(), headers=headers)
    assert good.status == 202


async def test_notification_needs_the_subscription_token(client: Client, notifications: list[Any]) -> None:
    seen = notifications
    resp = await client.post("/fhir/notify")
    assert resp.status == 401
    resp = await client.post("/fhir/notify", headers=bearer("wrong"))
    assert resp.status == 401
    assert seen == []
    resp = await client.post("/fhir/notify", headers=bearer(NOTIFY_TOKEN))
    assert resp.status == 200 and seen == [None]


async def test_api_key_authenticates_a_service_account(client: Client) -> None:
    resp = await client.get("/api/v1/outbox", headers={"X-API-Key": API_KEYS["ops"]})
    assert resp.status == 200
    resp = await client.get("/api/v1/outbox", headers={"X-API-Key": "nope"})
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_criteria_subscription_ping_and_payload(client: Client, notifications: list[Any]) -> None:
    seen = notifications
    resp = await client.post("/fhir/notify", headers=bearer(NOTIFY_TOKEN))
    assert resp.status == 200 and seen == [None]
    task = {"resourceType": "Task", "id": "t-1", "status": "requested"}
    resp = await client.put("/fhir/notify/Task/t-1", json=task, headers=bearer(NOTIFY_TOKEN))
    assert seen[-1] == task
    resp = await client.put("/fhir/notify/Task/t-1", json=task)
    assert resp.status == 401


async def test_oversized_body_is_413_json_and_documented(client: Client, make_token: TokenFactory) -> None:
    import io
    import json

    from bridge.web.app import MAX_BODY_BYTES

    big = json.dumps({**payloads.note(), "text": "x" * (MAX_BODY_BYTES + 1)}).encode()
    headers = {**bearer(make_token()), "Content-Type": "application/json"}
    resp = await client.post("/api/v1/notes/check", data=io.BytesIO(big), headers=headers)
    assert resp.status == 413
    body = await resp.json()
    assert body["code"] == "payload_too_large" and body["request_id"]
    doc = await (await client.get("/api/openapi.json")).json()
    assert "413" in doc["paths"]["/api/v1/notes/check"]["post"]["responses"]
