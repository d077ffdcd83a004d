"""Issue 14: ``serve`` started without an identity provider (nobody could sign in) and
``/health/ready`` still said ok. With operators' API keys only, the bridge is not ready."""

from __future__ import annotations

from typing import Any

from bridge.config import Settings
from tests.web.conftest import open_app


async def test_no_identity_provider_is_not_ready(settings: Settings, jwks: dict[str, Any]) -> None:
    async for client, _ in open_app(settings, None):  # type: ignore[arg-type]  # no JWKS: API keys only
        ready = await client.get("/health/ready")
        body = await ready.json()
        assert ready.status == 503, body
        assert body["checks"]["identity_provider"] == {
            "ok": False,
            "detail": "no identity provider: nobody can sign in to /inbox",
        }
    async for client, _ in open_app(settings, jwks):
        assert (await client.get("/health/ready")).status == 200
