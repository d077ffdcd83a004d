"""SMART Backend Services against the sandbox EHR with its token endpoint switched on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import Fault, FaultProxy, on
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from bridge.clients import AsyncFhirClient, BearerAuth, RetryPolicy, SmartBackendAuth, auth_from_settings
from bridge.clients.auth import ASSERTION_LIFETIME_SECONDS
from bridge.clients.probe import probe_endpoint
from bridge.config import EndpointSettings
from bridge.errors import AuthError, ConfigError, FhirAuthError
from bridge_dev.sandbox import Sandbox, sandbox

RSA = RSAKey.generate_key(2048)
EC = ECKey.generate_key("P-384")
STRANGER = RSAKey.generate_key(2048)  # registered nowhere


def _jwk(key: RSAKey | ECKey, kid: str, alg: str) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def smart_ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    server_auth = {
        "types": ["smart"],
        "token_lifetime": 600,
        "smart_clients": [
            {
                "client_id": "bridge-rs",
                "scopes": "system/*.*",
                "jwks": {"keys": [_jwk(RSA, "rs-1", "RS384")]},
            },
            {"client_id": "bridge-es", "scopes": "system/*.*", "jwks": {"keys": [_jwk(EC, "es-1", "ES384")]}},
            {
                "client_id": "bridge-readonly",
                "scopes": "system/Patient.rs",
                "jwks": {"keys": [_jwk(RSA, "rs-1", "RS384")]},
            },
        ],
    }
    with sandbox(tmp_path_factory.mktemp("smart"), server_auth=server_auth) as ehr:
        yield ehr


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _auth(
    ehr: Sandbox, client_id: str = "bridge-rs", key: RSAKey | ECKey = RSA, **kw: Any
) -> SmartBackendAuth:
    alg = "ES384" if isinstance(key, ECKey) else "RS384"
    kid = "es-1" if alg == "ES384" else "rs-1"
    return SmartBackendAuth(base_url=ehr.base_url, client_id=client_id, key=key, alg=alg, kid=kid, **kw)


@pytest.fixture
async def smart_proxy(smart_ehr: Sandbox) -> AsyncIterator[FaultProxy]:
    fp = await FaultProxy(smart_ehr.root_url, rewrite_urls=False).start()
    try:
        yield fp
    finally:
        await fp.close()


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS384", "ES384"])
async def test_token_is_obtained_and_cached(smart_ehr: Sandbox, key: RSAKey | ECKey) -> None:
    auth = _auth(smart_ehr, "bridge-es" if isinstance(key, ECKey) else "bridge-rs", key)
    async with AsyncFhirClient(smart_ehr.base_url, auth=auth) as ehr:
        created = await ehr.create({"resourceType": "Patient", "gender": "unknown"})
        for _ in range(4):
            await ehr.read("Patient", str(created.id))
    assert auth.tokens_fetched == 1
    assert auth.token_url == smart_ehr.token_url  # discovered from .well-known/smart-configuration


async def test_token_is_refreshed_shortly_before_expiry(smart_ehr: Sandbox) -> None:
    clock = Clock()
    auth = _auth(smart_ehr, clock=clock)
    async with AsyncFhirClient(smart_ehr.base_url, auth=auth) as ehr:
        await ehr.search("Patient", {"_count": "1"})
        clock.now += 600 - 61  # still inside the lifetime less the 60 s margin
        await ehr.search("Patient", {"_count": "1"})
        assert auth.tokens_fetched == 1
        clock.now += 2  # inside the margin: fetch a new one before the old one dies
        await ehr.search("Patient", {"_count": "1"})
        assert auth.tokens_fetched == 2


async def test_one_refresh_on_401(smart_ehr: Sandbox, smart_proxy: FaultProxy) -> None:
    auth = _auth(smart_ehr)
    smart_proxy.plan(Fault.answer(401, match=on("GET", "/fhir/Patient")))
    async with AsyncFhirClient(smart_proxy.base_url, auth=auth) as ehr:
        page = await ehr.search("Patient", {"_id": uuid.uuid4().hex})
    assert page.total == 0
    assert auth.tokens_fetched == 2
    assert [s.fault for s in smart_proxy.seen if s.path == "/fhir/Patient"] == ["status", "forwarded"]


async def test_401_after_the_refresh_is_a_permanent_auth_error(
    smart_ehr: Sandbox, smart_proxy: FaultProxy
) -> None:
    auth = _auth(smart_ehr)
    smart_proxy.plan(*[Fault.answer(401, match=on("GET", "/fhir/Patient")) for _ in range(2)])
    async with AsyncFhirClient(smart_proxy.base_url, auth=auth, retry=RetryPolicy(max_attempts=5)) as ehr:
        with pytest.raises(FhirAuthError) as err:
            await ehr.search("Patient", {"_id": uuid.uuid4().hex})
    assert err.value.status == 401 and auth.tokens_fetched == 2
    assert smart_proxy.count("GET", "/fhir/Patient") == 2  # not retried beyond the one refresh


@pytest.mark.parametrize(
    ("client_id", "key"),
    [("bridge-rs", STRANGER), ("not-registered", RSA)],
    ids=["wrong-key", "unknown-client"],
)
async def test_refused_client_gets_a_clear_auth_error(
    smart_ehr: Sandbox, client_id: str, key: RSAKey
) -> None:
    auth = _auth(smart_ehr, client_id, key)
    async with AsyncFhirClient(smart_ehr.base_url, auth=auth) as ehr:
        with pytest.raises(AuthError) as err:
            await ehr.search("Patient", {"_count": "1"})
    assert err.value.status == 401
    assert "token request refused" in err.value.message and "invalid_client" in err.value.message
    assert client_id in err.value.message
    assert "BEGIN" not in err.value.message and "eyJ" not in err.value.message  # no key, no assertion


async def test_scope_refusal_is_403_on_the_auth_branch(smart_ehr: Sandbox) -> None:
    auth = _auth(smart_ehr, "bridge-readonly", scope="system/Patient.rs")
    async with AsyncFhirClient(smart_ehr.base_url, auth=auth) as ehr:
        await ehr.search("Patient", {"_count": "1"})
        with pytest.raises(FhirAuthError) as err:
            await ehr.create({"resourceType": "Patient"})
    assert err.value.status == 403 and auth.granted_scope == "system/Patient.rs"


async def test_no_token_against_a_smart_server_is_refused(smart_ehr: Sandbox) -> None:
    async with AsyncFhirClient(smart_ehr.base_url) as ehr:
        assert (await ehr.capability_statement())["resourceType"] == "CapabilityStatement"  # open
        with pytest.raises(FhirAuthError) as err:
            await ehr.read("Patient", "x")
    assert err.value.status == 401


def test_assertion_claims() -> None:
    auth = SmartBackendAuth(base_url="http://ehr/fhir", client_id="c", key=EC, alg="ES384")
    one, two = (
        jwt.decode(auth.client_assertion("http://ehr/auth/token"), EC, algorithms=["ES384"]) for _ in "12"
    )
    assert one.header["kid"] == EC.thumbprint() and one.header["alg"] == "ES384"
    c = one.claims
    assert (c["iss"], c["sub"], c["aud"]) == ("c", "c", "http://ehr/auth/token")
    assert c["exp"] - c["iat"] == ASSERTION_LIFETIME_SECONDS <= 300
    assert one.claims["jti"] != two.claims["jti"]


def _settings(**auth: Any) -> EndpointSettings:
    return EndpointSettings.model_validate({"base_url": "http://127.0.0.1:1/fhir", "auth": auth})


def test_keys_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bridge.pem").write_bytes(RSA.as_pem(private=True))
    from_file = auth_from_settings(
        "clinic", _settings(type="smart", client_id="c", private_key_file="bridge.pem"), base_dir=tmp_path
    )
    assert isinstance(from_file, SmartBackendAuth) and "PRIVATE" not in repr(from_file)
    monkeypatch.setenv("BRIDGE_TEST_EC_KEY", EC.as_pem(private=True).decode())
    from_env = auth_from_settings(
        "clinic",
        _settings(type="smart", client_id="c", alg="ES384", private_key_env="BRIDGE_TEST_EC_KEY", kid="k"),
    )
    assert isinstance(from_env, SmartBackendAuth) and from_env.kid == "k"


@pytest.mark.parametrize(
    ("auth", "path", "reason"),
    [
        ({"private_key_file": "missing.pem"}, "endpoints.clinic.auth.private_key_file", "cannot read"),
        ({"private_key_env": "BRIDGE_TEST_UNSET"}, "endpoints.clinic.auth.private_key_env", "not set"),
        ({"private_key_file": "ec.pem"}, "endpoints.clinic.auth.private_key_file", "RSA"),
        ({"private_key_file": "ec.pem", "alg": "ES384", "kid": "x"}, None, None),
    ],
)
def test_key_problems_name_the_key_path(
    tmp_path: Path, auth: dict[str, str], path: str | None, reason: str
) -> None:
    (tmp_path / "ec.pem").write_bytes(EC.as_pem(private=True))
    settings = _settings(type="smart", client_id="c", **auth)
    if path is None:
        assert auth_from_settings("clinic", settings, base_dir=tmp_path) is not None
        return
    with pytest.raises(ConfigError) as err:
        auth_from_settings("clinic", settings, base_dir=tmp_path)
    assert err.value.path == path and reason in err.value.reason


def test_bearer_token_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="BRIDGE_TEST_TOKEN"):
        auth_from_settings("clinic", _settings(type="bearer", token_env="BRIDGE_TEST_TOKEN"))
    monkeypatch.setenv("BRIDGE_TEST_TOKEN", "s3cret")
    auth = auth_from_settings("clinic", _settings(type="bearer", token_env="BRIDGE_TEST_TOKEN"))
    assert auth is not None and "s3cret" not in repr(auth)


async def test_bearer_token_is_sent(smart_proxy: FaultProxy) -> None:
    token = uuid.uuid4().hex
    async with AsyncFhirClient(smart_proxy.base_url, auth=BearerAuth(token)) as ehr:
        with pytest.raises(FhirAuthError):  # the sandbox knows no static tokens: refused, 401
            await ehr.read("Patient", "x")
    assert [s.authorization for s in smart_proxy.seen] == [f"Bearer {token}"]


@pytest.mark.parametrize(("key", "level"), [(RSA, "ok"), (STRANGER, "fail")], ids=["right-key", "wrong-key"])
async def test_check_reports_the_token(smart_ehr: Sandbox, key: RSAKey, level: str) -> None:
    report = await probe_endpoint("smart", smart_ehr.base_url, auth=_auth(smart_ehr, key=key))
    findings = {f.name: f for f in report.findings}
    assert findings["auth"].level == "ok" and findings["token"].level == level
    assert report.failed is (level == "fail")
    if level == "fail":
        assert "invalid_client" in findings["token"].reason


async def test_check_without_credentials_on_a_smart_server_fails_access(smart_ehr: Sandbox) -> None:
    report = await probe_endpoint("smart", smart_ehr.base_url)
    findings = {f.name: f for f in report.findings}
    assert findings["auth"].level == "warn"  # the CapabilityStatement declares SMART-on-FHIR
    assert findings["access"].level == "fail" and "no credentials" in findings["access"].reason
