"""Issue 14: ``serve`` started without an identity provider (nobody could sign in) or a directory,
and ``/health/ready`` still said ok. With operators' API keys only, or no directory file, the
bridge is not ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import Settings
from bridge.web import create_app
from bridge.web.auth import Authenticator
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


async def test_no_directory_file_is_not_ready(
    settings: Settings, jwks: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve`` without a directory file: every submission would name an unknown participant."""
    monkeypatch.setenv("BRIDGE_DIRECTORY", str(tmp_path / "nowhere.json"))
    app = create_app(settings, authenticator=Authenticator.from_settings(settings, jwks=jwks))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        ready = await client.get("/health/ready")
        body = await ready.json()
    assert ready.status == 503 and body["checks"]["directory"] == {"ok": False, "detail": "no directory file"}
