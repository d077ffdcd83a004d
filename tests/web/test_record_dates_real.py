"""Absurd session and note dates on the real stack (sandbox EHR, ExchangeService, SQLite, rule
files): a session ending more than a few minutes after the bridge's clock, or starting before
``rules.oldest_record_days`` ago, is ``422 invalid_input`` naming the field, and nothing is queued.
The service's clock is the real one, so the dates here are built from today."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge_dev.sandbox import Sandbox
from tests.web.payloads import note
from tests.web.stack import Stack, encounter_for, serve, write_stack

Client = TestClient[Any, Any]


@pytest.fixture
async def live(sandbox_ehr: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Client, Stack]]:
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    # the default floor (366 days), as a deployment without the setting gets it
    text = stack.config.read_text()
    assert "oldest_record_days = 36500\n" in text
    stack.config.write_text(text.replace("oldest_record_days = 36500\n", ""))
    async with serve(stack) as client:
        yield client, stack


def _session(stack: Stack, n: int, start: datetime, minutes: int = 45) -> dict[str, Any]:
    return encounter_for(stack, n) | {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
    }


@pytest.mark.parametrize(
    ("n", "start", "field"),
    [
        (1, "0001-01-01T09:00:00+00:00", "start"),
        (2, "9999-12-30T09:00:00+00:00", "end"),
    ],
)
async def test_absurd_years_are_refused(live: tuple[Client, Stack], n: int, start: str, field: str) -> None:
    client, stack = live
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    body = _session(stack, n, datetime.fromisoformat(start))
    resp = await client.post("/api/v1/encounters", json=body, headers=key)
    answer = await resp.json()
    assert resp.status == 422, answer
    assert (answer["code"], answer["field"]) == ("invalid_input", field)
    ops = {"X-API-Key": stack.env["BRIDGE_TEST_OPS_KEY"]}
    outbox = await (await client.get("/api/v1/outbox", headers=ops)).json()
    assert body["id"] not in {i["record_id"] for i in outbox["items"]}


async def test_the_window_edges(live: tuple[Client, Stack]) -> None:
    client, stack = live
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    now = datetime.now(UTC)

    async def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = await client.post("/api/v1/encounters", json=body, headers=key)
        return resp.status, await resp.json()

    # ends an hour from now: refused; ended a minute ago: accepted (a session just logged)
    status, answer = await post(_session(stack, 3, now + timedelta(minutes=15)))
    assert (status, answer.get("field")) == (422, "end"), answer
    status, answer = await post(_session(stack, 4, now - timedelta(minutes=46)))
    assert status == 202, answer
    # started 400 days ago: before the default floor; 300 days ago: late documentation, accepted
    status, answer = await post(_session(stack, 5, now - timedelta(days=400)))
    assert (status, answer.get("field")) == (422, "start"), answer
    status, answer = await post(_session(stack, 6, now - timedelta(days=300)))
    assert status == 202, answer
    assert "rules.oldest_record_days" in json.dumps(
        (await post(_session(stack, 7, now - timedelta(days=400))))[1]
    )


async def test_a_note_written_in_the_future_is_refused(live: tuple[Client, Stack]) -> None:
    client, stack = live
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    when = datetime.now(UTC) + timedelta(days=1)
    body = note(
        participant_id=stack.participant_id,
        author_id=stack.peer_id,
        encounter_id=f"enc-{stack.participant_id}-0",
        written_at=when.isoformat(),
    )
    for route in ("/api/v1/notes", "/api/v1/notes/check"):
        resp = await client.post(route, json=body, headers=key)
        answer = await resp.json()
        assert resp.status == 422, (route, answer)
        assert (answer["code"], answer["field"]) == ("invalid_input", "written_at")
