"""The bridge's checks of an ID token (``OidcClient.id_token_claims``), fed real token answers of
the real provider: for this sign-in's nonce only, for this client only, from this issuer only,
signed by its keys, not expired. Plus discovery and client-secret errors naming the config key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from bridge.config import settings_from_dict
from bridge.errors import ConfigError, NotAuthenticatedError
from bridge.web.signin import OidcClient
from bridge_dev.idp import CLIENT_ID, Account, IdentityProvider, bridge_client, identity_provider
from bridge_dev.sandbox import Sandbox, free_port
from bridge_dev.stack import to_toml
from tests.web.conftest import AUDIENCE, OIDC_CLIENT_SECRET, open_app, settings_dict
from tests.web.signin import through_provider


def _settings(idp: IdentityProvider, client_id: str = CLIENT_ID, **extra: Any) -> Any:
    cfg = settings_dict("http://127.0.0.1:9/fhir")
    cfg["identity_provider"] = {
        "issuer": idp.issuer,
        "client_id": client_id,
        "client_secret_env": "BRIDGE_TEST_OIDC_SECRET",
        "redirect_url": "http://127.0.0.1:9/inbox/signin/callback",  # never visited: we stop before
        **extra,
    }
    return settings_from_dict(cfg)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_OIDC_SECRET", OIDC_CLIENT_SECRET)


@pytest.fixture
async def bridge_client_of(secret: None, oidc_provider: IdentityProvider) -> AsyncIterator[OidcClient]:
    client = await OidcClient.open(_settings(oidc_provider))
    yield client
    await client.close()


async def _tokens(client: OidcClient, account: Account, *, nonce: str) -> dict[str, Any]:
    """A real sign-in of ``account`` for ``client`` at its provider: the token endpoint's answer."""
    verifier = secrets.token_urlsafe(40)
    url = client.authorization_url(state="st", nonce=nonce, code_verifier=verifier)
    async with httpx.AsyncClient(timeout=30) as http:
        back = await through_provider(http, url, account)
    code = dict(parse_qsl(urlsplit(back).query))["code"]
    return await client.redeem(code, verifier)


async def test_a_genuine_token_gives_the_claims(
    bridge_client_of: OidcClient, oidc_provider: IdentityProvider
) -> None:
    peer = oidc_provider.account("peer")
    claims = await bridge_client_of.id_token_claims(
        await _tokens(bridge_client_of, peer, nonce="n-1"), nonce="n-1"
    )
    assert claims["sub"] == peer.sub and claims["practitioner_id"] == "peer-1"
    assert claims["role"] == "peer-specialist" and claims["organization"] == "harbor-recovery"


async def test_a_token_for_another_nonce_is_refused(
    bridge_client_of: OidcClient, oidc_provider: IdentityProvider
) -> None:
    """Nonce replay: an ID token obtained in one sign-in presented for another."""
    tokens = await _tokens(bridge_client_of, oidc_provider.account("peer"), nonce="first-sign-in")
    with pytest.raises(NotAuthenticatedError, match="nonce"):
        await bridge_client_of.id_token_claims(tokens, nonce="second-sign-in")


async def test_a_token_for_another_client_is_refused(
    secret: None,
    bridge_client_of: OidcClient,
    oidc_provider: IdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTHER_APP_SECRET", "other-app-secret")
    other = await OidcClient.open(
        _settings(oidc_provider, client_id="other-app", client_secret_env="OTHER_APP_SECRET")
    )
    try:
        tokens = await _tokens(other, oidc_provider.account("supervisor"), nonce="n-2")
        assert (await other.id_token_claims(tokens, nonce="n-2"))["aud"] == "other-app"  # genuine for it
    finally:
        await other.close()
    with pytest.raises(NotAuthenticatedError, match="aud"):
        await bridge_client_of.id_token_claims(tokens, nonce="n-2")


async def test_a_token_from_another_issuer_with_the_same_key_is_refused(
    secret: None, bridge_client_of: OidcClient, oidc_provider: IdentityProvider, tmp_path: Path
) -> None:
    """A second provider holding the same signing key (same kid): the signature verifies, the
    issuer does not match."""
    clients = [bridge_client(secret=OIDC_CLIENT_SECRET, any_loopback_port=True)]
    with identity_provider(
        tmp_path, accounts=oidc_provider.accounts, clients=clients, key=oidc_provider.key
    ) as elsewhere:
        assert elsewhere.issuer != oidc_provider.issuer
        theirs = await OidcClient.open(_settings(elsewhere))
        try:
            tokens = await _tokens(theirs, elsewhere.account("supervisor"), nonce="n-3")
        finally:
            await theirs.close()
    with pytest.raises(NotAuthenticatedError, match="iss"):
        await bridge_client_of.id_token_claims(tokens, nonce="n-3")


def _forged(idp: IdentityProvider, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": idp.issuer, "aud": CLIENT_ID, "sub": "x", "iat": now, "exp": now + 600, "nonce": "n"}
    claims.update(over)
    return {"id_token": jwt.encode({"alg": "RS256", "kid": idp.key.kid}, claims, idp.key)}


async def test_an_expired_token_is_refused(
    bridge_client_of: OidcClient, oidc_provider: IdentityProvider
) -> None:
    assert (await bridge_client_of.id_token_claims(_forged(oidc_provider), nonce="n"))["sub"] == "x"
    old = int(time.time()) - 3600
    with pytest.raises(NotAuthenticatedError, match="exp"):
        await bridge_client_of.id_token_claims(_forged(oidc_provider, iat=old - 600, exp=old), nonce="n")


async def test_a_token_signed_with_a_shared_secret_or_unsigned_is_refused(
    bridge_client_of: OidcClient, oidc_provider: IdentityProvider
) -> None:
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "aud": CLIENT_ID, "sub": "x", "iat": now, "exp": now + 60}
    hs = jwt.encode({"alg": "HS256"}, {**claims, "nonce": "n"}, OctKey.import_key("k" * 32))
    with pytest.raises(NotAuthenticatedError):
        await bridge_client_of.id_token_claims({"id_token": hs}, nonce="n")
    head, body, _ = hs.split(".")
    with pytest.raises(NotAuthenticatedError):
        await bridge_client_of.id_token_claims({"id_token": f"{head}.{body}."}, nonce="n")
    with pytest.raises(NotAuthenticatedError, match="no ID token"):
        await bridge_client_of.id_token_claims({"access_token": "a"}, nonce="n")


async def test_discovery_and_secret_errors_name_the_key(
    oidc_provider: IdentityProvider, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BRIDGE_TEST_OIDC_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"identity_provider\.client_secret_env: environment variable"):
        await OidcClient.open(_settings(oidc_provider))
    monkeypatch.setenv("BRIDGE_TEST_OIDC_SECRET", OIDC_CLIENT_SECRET)
    with pytest.raises(ConfigError, match=r"identity_provider\.issuer: cannot read"):
        await OidcClient.open(_settings(oidc_provider, issuer="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match=r"identity_provider\.client_secret_file: cannot read"):
        await OidcClient.open(
            _settings(oidc_provider, client_secret_env=None, client_secret_file=str(tmp_path / "none"))
        )


def test_bridge_serve_stops_with_the_key_when_the_provider_cannot_be_read(tmp_path: Path) -> None:
    cfg = settings_dict("http://127.0.0.1:9/fhir", tmp_path / "bridge.db")
    cfg["server"] = {**cfg["server"], "port": free_port(), "public_url": "http://127.0.0.1:8099"}
    cfg["identity_provider"] = {"issuer": f"http://127.0.0.1:{free_port()}", "client_id": CLIENT_ID}
    config = tmp_path / "bridge.toml"
    config.write_text(to_toml(cfg))
    env = {**os.environ, "BRIDGE_TEST_OPS_KEY": "k" * 20, "BRIDGE_TEST_OTHER_KEY": "o" * 20}
    bridge = str(Path(sys.executable).with_name("bridge"))
    done = subprocess.run(
        [bridge, "serve", "--config", str(config)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2
    assert "identity_provider.issuer: cannot read" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout and "asynchronous generator" not in done.stderr


async def test_the_providers_access_tokens_call_the_api_and_its_id_tokens_do_not(
    secret: None,
    bridge_client_of: OidcClient,
    oidc_provider: IdentityProvider,
    sandbox_ehr: Sandbox,
    env: None,
    tmp_path: Path,
) -> None:
    """The provider issues JWT access tokens for the bridge's API (aud = ``api_auth.audience``)
    with the same claims: an app of the organization calls the API with them, checked against the
    provider's JWKS. Its ID tokens (aud = the inbox's client id) are not API tokens."""
    async with httpx.AsyncClient(timeout=30) as http:
        jwks = (await http.get(bridge_client_of.metadata.jwks_uri)).json()
    cfg = settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db", issuer=oidc_provider.issuer)
    tokens = await _tokens(bridge_client_of, oidc_provider.account("peer"), nonce="n-4")
    async for client, _exchange in open_app(settings_from_dict(cfg), jwks):
        ok = await client.get(
            "/api/v1/referrals", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert ok.status == 200, await ok.text()
        wrong = await client.get(
            "/api/v1/referrals", headers={"Authorization": f"Bearer {tokens['id_token']}"}
        )
        assert wrong.status == 401
    assert AUDIENCE != CLIENT_ID
