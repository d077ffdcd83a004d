"""Fixtures for the service: settings, an identity provider's key pair, tokens, a running app."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bridge.config import Settings, settings_from_dict
from bridge.web import create_app
from bridge.web.auth import Authenticator
from tests.web.fakes import FakeService, factory

ORG = "harbor-recovery"
OTHER_ORG = "elsewhere-recovery"
ISSUER = "https://idp.harbor.test"
AUDIENCE = "peer-bridge"
NOTIFY_TOKEN = "notify-secret-for-tests"
API_KEYS = {"ops": "ops-key-0123456789", "other-ops": "other-ops-key-0123456789"}


@pytest.fixture(scope="session")
def idp_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "idp-1", "alg": "ES256"})


@pytest.fixture(scope="session")
def jwks(idp_key: ECKey) -> dict[str, Any]:
    return KeySet([idp_key]).as_dict(private=False)


TokenFactory = Callable[..., str]


@pytest.fixture(scope="session")
def make_token(idp_key: ECKey) -> TokenFactory:
    def make(
        role: str = "peer-specialist",
        organization: str = ORG,
        practitioner_id: str | None = "peer-1",
        *,
        key: ECKey | None = None,
        **overrides: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": f"user-{uuid.uuid4().hex[:8]}",
            "iat": now,
            "exp": now + 600,
            "role": role,
            "organization": organization,
        }
        if practitioner_id is not None:
            claims["practitioner_id"] = practitioner_id
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, key or idp_key)

    return make


def settings_dict(**api_auth: Any) -> dict[str, Any]:
    return {
        "organization": {"id": ORG, "name": "Harbor", "identifier_system": "https://harbor.test/id"},
        "endpoints": {"clinic": {"base_url": "http://127.0.0.1:9/fhir"}},
        "server": {"notification_token_env": "BRIDGE_TEST_NOTIFY_TOKEN"},
        "api_auth": {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "api_keys": [
                {"name": "ops", "key_env": "BRIDGE_TEST_OPS_KEY", "role": "integrator", "organization": ORG},
                {
                    "name": "other-ops",
                    "key_env": "BRIDGE_TEST_OTHER_KEY",
                    "role": "integrator",
                    "organization": OTHER_ORG,
                },
            ],
            **api_auth,
        },
    }


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_OPS_KEY", API_KEYS["ops"])
    monkeypatch.setenv("BRIDGE_TEST_OTHER_KEY", API_KEYS["other-ops"])
    monkeypatch.setenv("BRIDGE_TEST_NOTIFY_TOKEN", NOTIFY_TOKEN)


@pytest.fixture
def settings(env: None) -> Settings:
    return settings_from_dict(settings_dict())


@pytest.fixture
def service() -> FakeService:
    return FakeService(organization=ORG)


@pytest.fixture
async def client(
    settings: Settings, service: FakeService, jwks: dict[str, Any]
) -> AsyncIterator[TestClient[Any, Any]]:
    auth = Authenticator.from_settings(settings, jwks=jwks)
    app = create_app(settings, service_factory=factory(service), authenticator=auth)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- browser tests: Debian chromium through Playwright (never `playwright install`) ---------------
# Playwright's async API, so the browser shares pytest-asyncio's loop: its sync API (what
# pytest-playwright's fixtures use) keeps a loop running in the main thread, which breaks every
# async test that runs after it in the same session.

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """For pytest-playwright's own fixtures, should anyone use them: Debian's chromium, headless."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True, "args": LAUNCH_ARGS}


@pytest.fixture(scope="session")
def base_url() -> str | None:
    # pytest-playwright's fallback defines this as an instance-method fixture, which pytest 9
    # deprecates (an error under filterwarnings=error); tests pass full URLs anyway
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def browser_page(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A fresh headless Chromium page; a full-page screenshot lands in ``test-results/`` on failure."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            yield page
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                ARTIFACTS.mkdir(exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
                await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            await browser.close()
