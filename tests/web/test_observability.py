"""JSON logs without PHI, and what a crash looks like from outside (a 500 with a request id only)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.domain import PeerNote
from bridge.exchange.views import Actor
from bridge.exchange.wiring import ExchangeService
from bridge.observability import JsonFormatter, configure_logging
from bridge.roles.decision import Decision
from tests.web import payloads
from tests.web.conftest import TokenFactory, bearer

SECRET_TEXT = "Avery said something private about her brother"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = configure_logging(logging.INFO, buf)
    yield buf
    logging.getLogger("bridge").removeHandler(handler)
    logging.getLogger().removeHandler(handler)


def test_third_party_loggers_pass_the_same_allow_list(logs: io.StringIO) -> None:
    try:
        raise ValueError(f"cannot parse {SECRET_TEXT}")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    line = json.loads(logs.getvalue().strip().splitlines()[-1])
    assert line["logger"] == "aiohttp.server" and line["error_type"] == "ValueError"
    assert SECRET_TEXT not in logs.getvalue()


def test_formatter_keeps_only_allow_listed_fields() -> None:
    record = logging.LogRecord("bridge.x", logging.INFO, __file__, 1, "note queued", (), None)
    record.submission_id = "sub-1"
    record.text = SECRET_TEXT  # a careless extra: must not be written
    out = json.loads(JsonFormatter().format(record))
    assert out["submission_id"] == "sub-1" and out["msg"] == "note queued"
    assert SECRET_TEXT not in json.dumps(out)


async def test_a_crash_is_a_bare_500_and_the_log_has_no_input(
    client: TestClient[Any, Any],
    exchange: ExchangeService,
    make_token: TokenFactory,
    logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def exploding(note: PeerNote, *, actor: Actor) -> Decision:
        raise ValueError(f"cannot handle {note.text}")  # a bug that quotes its input

    monkeypatch.setattr(exchange.submissions, "check_note", exploding)
    resp = await client.post(
        "/api/v1/notes/check", json=payloads.note(text=SECRET_TEXT), headers=bearer(make_token())
    )
    body = await resp.json()
    assert resp.status == 500
    assert body == {
        "code": "internal_error",
        "message": "internal error; quote the request id",
        "request_id": resp.headers["X-Request-Id"],
    }
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    crash = next(r for r in lines if r["msg"] == "unhandled error")
    assert crash["error_type"] == "ValueError" and crash["request_id"] == resp.headers["X-Request-Id"]
    assert SECRET_TEXT not in logs.getvalue()
