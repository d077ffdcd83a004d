"""Issue 10, low findings that were a 500 or a quiet acceptance: each is a 4xx JSON answer now."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge_dev.sandbox import Sandbox
from tests.web.conftest import NOTIFY_TOKEN
from tests.web.stack import Stack, serve, write_stack

Client = TestClient[Any, Any]


@pytest.fixture
async def served(sandbox_ehr: Sandbox, tmp_path: Path) -> AsyncIterator[tuple[Client, Stack]]:
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    text = stack.config.read_text().replace(
        '[server]\nhost = "127.0.0.1"\n',
        '[server]\nhost = "127.0.0.1"\nnotification_token_env = "BRIDGE_TEST_NOTIFY_TOKEN"\n',
    )
    assert "notification_token_env" in text
    stack.config.write_text(text)
    async with serve(stack, BRIDGE_TEST_NOTIFY_TOKEN=NOTIFY_TOKEN) as client:
        yield client, stack


async def _raw(client: Client, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (an HTTP client would refuse or re-encode a non-UTF-8 header)."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    ("path", "header"),
    [
        (b"/api/v1/referrals", b"X-API-Key: \xff\xfe-key"),
        (b"/api/v1/referrals", b"Authorization: Bearer \xff\xfe.a.b"),
    ],
)
async def test_non_utf8_credentials_are_401_json(
    served: tuple[Client, Stack], path: bytes, header: bytes
) -> None:
    client, _ = served
    status, headers, body = await _raw(
        client, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n"
    )
    assert status == 401, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["code"] == "unauthenticated"


async def test_non_utf8_notify_token_is_401_json(served: tuple[Client, Stack]) -> None:
    client, _ = served
    status, _headers, body = await _raw(
        client,
        b"POST /fhir/notify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    assert status == 401, body
    assert json.loads(body)["code"] == "unauthenticated"


async def test_the_notify_token_needs_the_bearer_scheme(served: tuple[Client, Stack]) -> None:
    client, _ = served
    resp = await client.post("/fhir/notify", headers={"Authorization": NOTIFY_TOKEN})
    assert resp.status == 401 and (await resp.json())["code"] == "unauthenticated"
    resp = await client.post("/fhir/notify", headers={"Authorization": f"Bearer {NOTIFY_TOKEN}"})
    assert resp.status == 200, await resp.text()  # the near miss: the same token, as a bearer


@pytest.mark.parametrize(
    "bundle",
    [
        {"resourceType": "Bundle", "type": "history", "entry": ["x"]},
        {"resourceType": "Bundle", "type": "history", "entry": "x"},
        {
            "resourceType": "Bundle",
            "type": "history",
            "entry": [{"resource": {"resourceType": "Parameters", "parameter": "x"}}],
        },
        {
            "resourceType": "Bundle",
            "type": "history",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Parameters",
                        "parameter": ["x", {"name": "type", "valueCode": "heartbeat"}],
                    }
                }
            ],
        },
        {
            "resourceType": "Bundle",
            "type": "history",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Parameters",
                        "parameter": [
                            {"name": "type", "valueCode": "event-notification"},
                            {"name": "notification-event", "part": ["x"]},
                        ],
                    }
                }
            ],
        },
    ],
)
async def test_malformed_notification_bundles_are_4xx_json(
    served: tuple[Client, Stack], bundle: dict[str, Any]
) -> None:
    client, _ = served
    resp = await client.post("/fhir/notify", json=bundle, headers={"Authorization": f"Bearer {NOTIFY_TOKEN}"})
    assert resp.status in (400, 422), await resp.text()
    assert resp.content_type == "application/json"
    assert (await resp.json())["code"] in ("malformed_json", "invalid_input")
