"""Issue 14: ``serve`` started without an identity provider (nobody could sign in) or a directory,
and ``/health/ready`` still said ok. With operators' API keys only, or no directory file, the
bridge is not ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import Settings, settings_from_dict
from bridge.preflight import check_identity_provider
from bridge.web import create_app
from bridge.web.auth import Authenticator
from bridge_dev.sandbox import free_port
from tests.web.conftest import OIDC_CLIENT_SECRET, open_app, signin_settings_dict


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


async def test_an_openid_provider_without_a_jwks_is_ready(
    env: None,
    sandbox_ehr: Any,
    tmp_path: Path,
    oidc_provider: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """People sign in at the OpenID Provider (read at start-up): no API JWKS is needed for that."""
    monkeypatch.setenv("BRIDGE_TEST_OIDC_SECRET", OIDC_CLIENT_SECRET)
    port = free_port()
    settings = settings_from_dict(
        signin_settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db", oidc_provider, port)
    )
    async for client, _ in open_app(settings, None, port=port):  # type: ignore[arg-type]
        ready = await client.get("/health/ready")
        body = await ready.json()
        assert ready.status == 200, body
        assert body["checks"]["identity_provider"]["ok"] is True


async def test_check_reads_the_openid_provider_and_names_its_key_when_it_cannot(
    env: None,
    sandbox_ehr: Any,
    tmp_path: Path,
    oidc_provider: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_OIDC_SECRET", OIDC_CLIENT_SECRET)
    cfg = signin_settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db", oidc_provider, free_port())
    found = await check_identity_provider(settings_from_dict(cfg))
    assert (found.level, found.name) == ("ok", "identity-provider"), found
    cfg["identity_provider"]["issuer"] = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    found = await check_identity_provider(settings_from_dict(cfg))
    assert found.level == "fail" and found.reason.startswith("identity_provider.issuer: cannot read"), found
