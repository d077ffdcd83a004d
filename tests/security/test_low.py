"""Issue 10, low findings that were a 500 or a quiet acceptance: each is a 4xx JSON answer now."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bridge.errors import ConfigError
from bridge.web import create_app
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import NOTIFY_TOKEN, TokenFactory, bearer
from tests.web.stack import Stack, add_peer, encounter_for, environment, serve, write_stack

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


@pytest.mark.parametrize(
    "path", ["/api/v1/referrals/{}", "/api/v1/submissions/{}", "/api/v1/notes/{}/cosign"]
)
async def test_an_overlong_id_is_400_json(served: tuple[Client, Stack], path: str) -> None:
    client, stack = served
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    method = client.post if path.endswith("cosign") else client.get
    resp = await method(path.format("a" * 10_000), headers=key)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == "malformed_id"
    near = await client.get(path.format("a" * 64), headers=key) if method == client.get else None
    assert near is None or near.status == 404  # the longest id allowed is looked up as usual


@pytest.mark.parametrize("jwks", ["[]", '{"keys": []}', '{"keys": [{"kty": "EC"}]}', '{"keys": "x"}'])
def test_a_jwks_that_would_switch_tokens_off_stops_the_start(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: str
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(jwks)
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0, jwks_file=jwks_file)
    with environment(stack) as settings, pytest.raises(ConfigError) as info:
        create_app(settings)
    assert info.value.path == "api_auth.jwks_file"


async def test_a_token_without_sub_is_refused(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0, jwks_file=jwks_file)
    add_peer(stack, "peer-nosub")
    async with serve(stack) as client:
        for sub, status in ((None, 401), ("", 401), ("user-1", 200)):
            token = make_token(practitioner_id="peer-nosub", sub=sub)
            resp = await client.get("/api/v1/referrals", headers=bearer(token))
            assert resp.status == status, (sub, await resp.text())


# (a [server] setting added to the stack's config, the X-Forwarded-Proto the request carries, Secure?)
COOKIE_CASES = [
    ('public_url = "https://bridge.harbor.test"', None, True),  # the public URL is https
    ("", "https", False),  # a header any client can send is not trusted by default
    ("trust_forwarded_proto = true", "https", True),  # ... unless a proxy is said to set it
    ("trust_forwarded_proto = true", None, False),
]


@pytest.mark.parametrize(("setting", "forwarded", "secure"), COOKIE_CASES)
async def test_the_session_cookie_is_secure_behind_a_tls_proxy(
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    make_token: TokenFactory,
    setting: str,
    forwarded: str | None,
    secure: bool,
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0, jwks_file=jwks_file)
    text = stack.config.read_text().replace(
        '[server]\nhost = "127.0.0.1"\n', f'[server]\nhost = "127.0.0.1"\n{setting}\n'
    )
    assert setting in text
    stack.config.write_text(text)
    headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
    async with serve(stack) as client:
        token = make_token(practitioner_id=stack.peer_id)
        resp = await client.post(
            "/inbox/login", data={"credential": token}, headers=headers, allow_redirects=False
        )
        assert resp.status == 303, await resp.text()
        assert ("Secure" in resp.headers["Set-Cookie"]) is secure


async def test_a_location_name_is_a_name_not_a_story(served: tuple[Client, Stack]) -> None:
    client, stack = served
    key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
    resp = await client.post(
        "/api/v1/encounters", json={**encounter_for(stack), "location_name": "x" * 900_000}, headers=key
    )
    assert resp.status in (413, 422), await resp.text()
    resp = await client.post(
        "/api/v1/encounters", json={**encounter_for(stack), "location_name": "x" * 201}, headers=key
    )
    assert resp.status == 422 and (await resp.json())["field"] == "location_name"
