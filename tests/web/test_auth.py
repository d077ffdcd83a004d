"""Authentication: bearer JWTs verified against the IdP's JWKS, static API keys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from bridge.config import settings_from_dict
from bridge.errors import ConfigError, NotAuthenticatedError
from bridge.web.auth import Authenticator
from bridge_dev.sandbox import Sandbox
from tests.web.conftest import API_KEYS, AUDIENCE, ISSUER, ORG, TokenFactory, bearer, directory, settings_dict

Client = TestClient[Any, Any]


@pytest.fixture
def auth(env: None, jwks: dict[str, Any]) -> Authenticator:
    return Authenticator.from_settings(settings_from_dict(settings_dict()), jwks=jwks)


def test_valid_token_gives_role_org_and_practitioner(auth: Authenticator, make_token: TokenFactory) -> None:
    p = auth.authenticate(f"Bearer {make_token('peer-supervisor', practitioner_id='sup-9')}", None)
    got = (p.role.value, p.organization, p.practitioner_id, p.via)
    assert got == ("peer-supervisor", ORG, "sup-9", "jwt")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "someone-else"}, "wrong audience"),
        ({"iss": "https://evil.test"}, "wrong issuer"),
        ({"exp": None}, "no exp"),
        ({"role": "wizard"}, "unknown role"),
        ({"role": None}, "no role"),
        ({"organization": None}, "no organization"),
    ],
)
def test_bad_claims_are_refused(
    auth: Authenticator, make_token: TokenFactory, overrides: dict[str, Any], why: str
) -> None:
    with pytest.raises(NotAuthenticatedError):
        auth.authenticate(f"Bearer {make_token(**overrides)}", None)


def test_token_signed_by_another_key_is_refused(auth: Authenticator, make_token: TokenFactory) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "idp-1"})
    with pytest.raises(NotAuthenticatedError):
        auth.authenticate(f"Bearer {make_token(key=stranger)}", None)


def test_symmetric_tokens_are_refused(auth: Authenticator) -> None:
    # an HS256 token "signed" with the public key material is the classic confusion attack
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 60, "role": "integrator", "organization": ORG}
    token = jwt.encode({"alg": "HS256"}, claims, OctKey.generate_key(256))
    with pytest.raises(NotAuthenticatedError):
        auth.authenticate(f"Bearer {token}", None)


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer not.a.jwt", "token"])
def test_malformed_authorization_is_refused(auth: Authenticator, header: str) -> None:
    with pytest.raises(NotAuthenticatedError):
        auth.authenticate(header, None)


def test_api_keys_map_to_their_service_account(auth: Authenticator) -> None:
    p = auth.authenticate(None, API_KEYS["ops"])
    assert (p.subject, p.role.value, p.organization, p.via) == ("ops", "integrator", ORG, "api_key")
    with pytest.raises(NotAuthenticatedError):
        auth.authenticate(None, API_KEYS["ops"] + "x")


def test_missing_api_key_env_names_the_key_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_TEST_OPS_KEY", raising=False)
    with pytest.raises(ConfigError) as exc:
        Authenticator.from_settings(settings_from_dict(settings_dict()))
    assert exc.value.path == "api_auth.api_keys[0].key_env"


def test_jwks_without_issuer_is_a_config_error(env: None, jwks: dict[str, Any]) -> None:
    s = settings_from_dict(settings_dict(issuer=None))
    with pytest.raises(ConfigError) as exc:
        Authenticator.from_settings(s, jwks=jwks)
    assert exc.value.path == "api_auth.issuer"


async def test_no_credentials_is_401_over_http(client: Client, make_token: TokenFactory) -> None:
    resp = await client.get("/api/v1/referrals")
    assert resp.status == 401
    body = await resp.json()
    assert body["code"] == "unauthenticated"
    ok = await client.get("/api/v1/referrals", headers=bearer(make_token()))
    assert ok.status == 200


async def test_jwks_url_is_fetched_at_start_up(
    env: None, jwks: dict[str, Any], make_token: TokenFactory, sandbox_ehr: Sandbox, tmp_path: Path
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from bridge.web import create_app

    async def serve_jwks(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    idp = web.Application()
    idp.router.add_get("/jwks.json", serve_jwks)
    async with TestServer(idp, host="127.0.0.1") as idp_server:
        jwks_url = str(idp_server.make_url("/jwks.json"))
        settings = settings_from_dict(
            settings_dict(sandbox_ehr.base_url, tmp_path / "b.db", jwks_url=jwks_url)
        )
        app = create_app(settings, directory=directory())
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            ok = await client.get("/api/v1/referrals", headers=bearer(make_token()))
            assert ok.status == 200


async def test_unreachable_jwks_url_fails_start_up_naming_the_key(env: None) -> None:
    from aiohttp.test_utils import TestServer

    from bridge.web import create_app
    from bridge_dev.sandbox import free_port

    settings = settings_from_dict(settings_dict(jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json"))
    app = create_app(settings, directory=directory())
    server = TestServer(app, host="127.0.0.1")
    try:
        with pytest.raises(ConfigError) as exc:
            await server.start_server()
    finally:
        await server.close()
    assert exc.value.path == "api_auth.jwks_url"
