"""The aiohttp transport under the client honours HTTP(S)_PROXY / NO_PROXY from the environment,
as httpx's own transport did: a bridge deployed behind an outbound proxy keeps it (issue 15's
transport change had dropped it). A real proxy on loopback: an aiohttp server that answers any
absolute-form request and records what it was asked."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from bridge.clients.transport import default_transport
from bridge_dev.sandbox import free_port


async def test_requests_go_through_the_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.json_response({"resourceType": "OperationOutcome", "issue": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with httpx.AsyncClient(transport=default_transport(verify=True, max_connections=2)) as client:
            resp = await client.get("http://ehr.invalid/fhir/metadata")
    finally:
        await runner.cleanup()
    assert resp.status_code == 200
    assert seen and seen[0].endswith("/fhir/metadata")
