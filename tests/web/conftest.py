"""Fixtures for the service: settings, an identity provider's key pair, tokens, and a running app
over the real exchange (the session's sandbox EHR, a SQLite file of the test's own, the rule files,
a directory of made-up people). Workers are not started: tests drive delivery (``worker.drain``)."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from bridge.config import Settings, settings_from_dict
from bridge.domain import Role
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.wiring import ExchangeService, running_exchange
from bridge.web import create_app
from bridge.web.auth import Authenticator
from bridge_dev import samples
from bridge_dev.idp import CLIENT_ID, IdentityProvider, bridge_client, demo_accounts, identity_provider
from bridge_dev.sandbox import Sandbox, free_port
from bridge_dev.stack import RULES_DIR, bridge_config
from tests.web import payloads

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


RULES = RULES_DIR


def settings_dict(
    base_url: str = "http://127.0.0.1:9/fhir", store: Path | None = None, **api_auth: Any
) -> dict[str, Any]:
    return bridge_config(
        base_url,
        org=ORG,
        store_url=f"sqlite+aiosqlite:///{store}" if store else "sqlite+aiosqlite:///:memory:",
        endpoint={"subscribe": False},
        # the payloads have fixed dates (2026-03): keep them inside the accepted window
        rules={"oldest_record_days": 36500},
        server={"notification_token_env": "BRIDGE_TEST_NOTIFY_TOKEN"},
        api_auth={
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
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_OPS_KEY", API_KEYS["ops"])
    monkeypatch.setenv("BRIDGE_TEST_OTHER_KEY", API_KEYS["other-ops"])
    monkeypatch.setenv("BRIDGE_TEST_NOTIFY_TOKEN", NOTIFY_TOKEN)


@pytest.fixture
def settings(env: None, sandbox_ehr: Sandbox, tmp_path: Path) -> Settings:
    return settings_from_dict(settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db"))


def directory() -> InMemoryDirectory:
    """The people the tokens name: peers peer-1 and peer-2 (certified), prov-1 (provisional,
    supervised by sup-1), supervisors sup-1, sup-7 and sup-8, and the participant part-1."""
    people = [samples.certified_peer(p, organization_id=ORG) for p in ("peer-1", "peer-2")]
    people.append(samples.peer(payloads.PROVISIONAL, organization_id=ORG, supervisor_id="sup-1"))
    people += [
        samples.supervisor(s, organization_id=ORG, role=Role.PEER_SUPERVISOR)
        for s in ("sup-1", "sup-7", "sup-8")
    ]
    return InMemoryDirectory([samples.participant(payloads.PARTICIPANT, "MRN-web-1")], people)


async def open_app(
    settings: Settings, jwks: dict[str, Any], *, port: int | None = None, **app: Any
) -> AsyncIterator[tuple[TestClient[Any, Any], ExchangeService]]:
    """The app over the real exchange, and that exchange (seeded with the session notes document)."""
    opened: list[ExchangeService] = []

    @contextlib.asynccontextmanager
    async def exchange(s: Settings) -> AsyncIterator[ExchangeService]:
        async with running_exchange(s, directory=directory(), start_workers=False) as ex:
            opened.append(ex)
            yield ex

    auth = Authenticator.from_settings(settings, jwks=jwks)
    created = create_app(settings, exchange_factory=exchange, authenticator=auth, **app)
    async with TestClient(TestServer(created, host="127.0.0.1", port=port)) as c:
        await payloads.seed_sessions(opened[0])
        yield c, opened[0]


@pytest.fixture
async def served(
    settings: Settings, jwks: dict[str, Any]
) -> AsyncIterator[tuple[TestClient[Any, Any], ExchangeService]]:
    async for pair in open_app(settings, jwks):
        yield pair


@pytest.fixture
def client(served: tuple[TestClient[Any, Any], ExchangeService]) -> TestClient[Any, Any]:
    return served[0]


@pytest.fixture
def exchange(served: tuple[TestClient[Any, Any], ExchangeService]) -> ExchangeService:
    """The exchange behind ``client`` (the same store and clients)."""
    return served[1]


@pytest.fixture
def notifications(exchange: ExchangeService, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What reaches the exchange's inbound sync from the notification routes (which then handles
    it as always)."""
    seen: list[Any] = []
    handle = exchange.inbound.handle_notification

    async def recording(body: Mapping[str, Any] | None, **kw: Any) -> Any:
        seen.append(body)
        return await handle(body, **kw)

    monkeypatch.setattr(exchange.inbound, "handle_notification", recording)
    return seen


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- sign-in through a real OpenID Provider (dev/idp: npm oidc-provider under Node) ----------------

OIDC_CLIENT_SECRET = "bridge-client-secret-for-tests"


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityProvider]:
    """One provider for the session with the four accounts (peer-1, prov-1, sup-1, an integrator)
    and the bridge's client, whose redirects may come from any loopback port; ``other-app`` is a
    second client of the same provider (tokens for another audience)."""
    accounts = demo_accounts(
        organization=ORG, peer="peer-1", provisional=payloads.PROVISIONAL, supervisor="sup-1"
    )
    clients = [
        bridge_client(secret=OIDC_CLIENT_SECRET, any_loopback_port=True),
        bridge_client(client_id="other-app", secret="other-app-secret", any_loopback_port=True),
    ]
    with identity_provider(tmp_path_factory.mktemp("idp"), accounts=accounts, clients=clients) as idp:
        yield idp


def signin_settings_dict(
    base_url: str, store: Path, idp: IdentityProvider, port: int, **identity_provider: Any
) -> dict[str, Any]:
    """``settings_dict`` plus ``[identity_provider]`` naming ``idp``, for a bridge on ``port``."""
    cfg = settings_dict(base_url, store)
    cfg["server"] = {**cfg["server"], "public_url": f"http://127.0.0.1:{port}"}
    cfg["identity_provider"] = {
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret_env": "BRIDGE_TEST_OIDC_SECRET",
        **identity_provider,
    }
    return cfg


@dataclass
class SigninBridge:
    """A bridge whose people sign in at ``idp``: its URL, the exchange behind it, the provider."""

    url: str
    exchange: ExchangeService
    idp: IdentityProvider
    settings: Settings


@pytest.fixture
async def signin_bridge(
    env: None,
    sandbox_ehr: Sandbox,
    tmp_path: Path,
    jwks: dict[str, Any],
    oidc_provider: IdentityProvider,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[SigninBridge]:
    """The app over the real exchange, on a free loopback port, signing people in at the session's
    provider (the token form is off)."""
    monkeypatch.setenv("BRIDGE_TEST_OIDC_SECRET", OIDC_CLIENT_SECRET)
    port = free_port()
    cfg = signin_settings_dict(sandbox_ehr.base_url, tmp_path / "bridge.db", oidc_provider, port)
    settings = settings_from_dict(cfg)
    async for _client, exchange in open_app(settings, jwks, port=port):
        yield SigninBridge(f"http://127.0.0.1:{port}", exchange, oidc_provider, settings)


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
