"""Start and stop a real OpenID Provider (npm ``oidc-provider``, ``dev/idp/server.mjs``) for tests
and the demo, with the four demo accounts: a peer, a provisional peer, a supervisor, an integrator.

A development dependency, never a runtime one: the bridge signs people in against any OpenID
Provider (``[identity_provider]``). The provider runs under Node on a free loopback port; its npm
packages are installed into ``dev/idp/node_modules`` from the committed lock file (``npm ci``) the
first time. Passwords are made per run; the signing key is made here (so a test can start a second
provider with the same key and another issuer).

    with identity_provider(tmp, accounts=demo_accounts(org="harbor-recovery", peer="peer-1", ...),
                           clients=[bridge_client("http://127.0.0.1:8080")]) as idp:
        idp.issuer, idp.discovery_url, idp.account("peer").password
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import RSAKey

from bridge_dev.node import project_dir
from bridge_dev.processes import start_server, stop_group
from bridge_dev.sandbox import free_port

IDP_DIR = project_dir("idp")
CLIENT_ID = "peer-bridge-inbox"  # not the API audience: an ID token is never an API token
CALLBACK_PATH = "/inbox/signin/callback"
AFTER_LOGOUT_PATH = "/inbox"
# an app of the organization (the peer's phone app, an integration) that calls the bridge's API with
# the provider's access tokens; its redirect is never visited (the code is read from the Location)
APP_CLIENT_ID = "peer-app"
APP_REDIRECT = "http://127.0.0.1/app/callback"
_install_lock = threading.Lock()


@dataclass(frozen=True)
class Account:
    """One person at the provider: ``kind`` is what tests call them (``peer``, ``provisional``,
    ``supervisor``, ``integrator``)."""

    kind: str
    username: str
    password: str
    sub: str
    name: str
    claims: dict[str, Any]

    def to_config(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "sub": self.sub,
            "name": self.name,
            "claims": self.claims,
        }


def demo_accounts(
    *,
    organization: str,
    peer: str,
    provisional: str,
    supervisor: str,
    names: dict[str, str] | None = None,
) -> list[Account]:
    """The four accounts; ``peer``, ``provisional`` and ``supervisor`` are directory ids (the
    ``practitioner_id`` claim). Passwords are random per call."""
    names = names or {}

    def make(kind: str, role: str, practitioner: str | None, **extra: Any) -> Account:
        claims: dict[str, Any] = {"role": role, "organization": organization, **extra}
        if practitioner is not None:
            claims["practitioner_id"] = practitioner
        return Account(
            kind=kind,
            username=f"{kind}@{organization}",
            password=f"{kind}-{secrets.token_urlsafe(9)}",
            sub=f"{kind}-{secrets.token_hex(4)}",
            name=names.get(kind, f"Demo {kind}"),
            claims=claims,
        )

    return [
        make("peer", "peer-specialist", peer, provisional=False),
        make("provisional", "peer-specialist", provisional, provisional=True),
        make("supervisor", "peer-supervisor", supervisor),
        make("integrator", "integrator", None),
    ]


def bridge_client(
    bridge_url: str | None = None,
    *,
    client_id: str = CLIENT_ID,
    secret: str | None = None,
    any_loopback_port: bool = False,
) -> dict[str, Any]:
    """The bridge's client registration. ``any_loopback_port``: the redirect may come from any port
    of 127.0.0.1 (RFC 8252 §7.3, which oidc-provider applies to ``native`` clients): one provider
    then serves every test's bridge, each on a free port of its own."""
    base = (bridge_url or "http://127.0.0.1").rstrip("/")
    client: dict[str, Any] = {
        "client_id": client_id,
        "client_name": "Peer Bridge",
        "redirect_uris": [base + CALLBACK_PATH],
        "post_logout_redirect_uris": [base + AFTER_LOGOUT_PATH],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    if secret is None:
        client["token_endpoint_auth_method"] = "none"
    else:
        client["client_secret"] = secret
        client["token_endpoint_auth_method"] = "client_secret_basic"
    if any_loopback_port:
        client["application_type"] = "native"
    return client


def app_client() -> dict[str, Any]:
    """A public client (PKCE only) for an app that calls the bridge's API."""
    return {
        "client_id": APP_CLIENT_ID,
        "client_name": "Peer app",
        "application_type": "native",
        "redirect_uris": [APP_REDIRECT],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }


def _node() -> str:
    node = shutil.which("node")
    if not node:
        raise RuntimeError("the demo identity provider needs Node.js (node >= 18) on PATH")
    return node


def ensure_installed() -> None:
    """``npm ci`` into ``dev/idp/node_modules`` unless it is there (from the committed lock file)."""
    with _install_lock:
        if (IDP_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if not npm:
            raise RuntimeError("the demo identity provider needs npm to install oidc-provider")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=IDP_DIR,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )


@dataclass
class IdentityProvider:
    """A running provider. ``issuer`` is ``http://127.0.0.1:<port>``."""

    workdir: Path
    accounts: Sequence[Account]
    clients: Sequence[dict[str, Any]]
    port: int = 0
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "idp-rsa-1"}))
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def account(self, kind: str) -> Account:
        for a in self.accounts:
            if a.kind == kind:
                return a
        raise KeyError(kind)

    def start(self, timeout: float = 30.0) -> IdentityProvider:
        ensure_installed()
        self.port = self.port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "idp.json"
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "keys": [{**self.key.as_dict(private=True), "use": "sig", "alg": "RS256"}],
            "clients": list(self.clients),
            "accounts": [a.to_config() for a in self.accounts],
        }
        cfg.write_text(json.dumps(config))
        os.chmod(cfg, 0o600)  # passwords and the private key
        self.process = start_server(
            [_node(), str(IDP_DIR / "server.mjs"), str(cfg)],
            cwd=IDP_DIR,
            log=self.workdir / "idp.log",
            ready_url=f"http://127.0.0.1:{self.port}/.well-known/openid-configuration",
            what="identity provider",
            timeout=timeout,
            env={**os.environ, "NODE_ENV": "production"},
        )
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        stop_group(proc)


@contextmanager
def identity_provider(
    workdir: Path,
    *,
    accounts: Sequence[Account],
    clients: Sequence[dict[str, Any]],
    port: int = 0,
    key: RSAKey | None = None,
) -> Iterator[IdentityProvider]:
    idp = IdentityProvider(workdir, accounts, clients, port=port)
    if key is not None:
        idp.key = key
    idp.start()
    try:
        yield idp
    finally:
        idp.stop()


# --- signing in over plain HTTP (tests, the demo): what a browser does, without one ---------------


async def authorize(
    http: httpx.AsyncClient, bridge_url: str, account: Account, *, password: str | None = None
) -> str:
    """Start a sign-in at the bridge and sign in at the provider's form over HTTP; return the
    URL the provider sends the browser back to (the bridge's callback), without visiting it."""
    resp = await http.get(f"{bridge_url}/inbox/signin", follow_redirects=False)
    if resp.status_code != 303:
        raise RuntimeError(f"the bridge did not start a sign-in ({resp.status_code})")
    return await through_provider(http, resp.headers["Location"], account, password=password)


async def through_provider(
    http: httpx.AsyncClient,
    url: str,
    account: Account,
    *,
    password: str | None = None,
    callback_path: str = CALLBACK_PATH,
) -> str:
    """From an authorization request URL, sign in at the provider's form; return the redirect back
    to the client's callback (not visited), or "" when the provider refused the password."""
    posted = False
    for _ in range(12):  # provider: /auth -> /interaction/<uid> (the form) -> /auth/<uid> -> callback
        if urlsplit(url).path == callback_path:
            return url  # (straight back when the provider still has a session of this browser)
        resp = await http.get(url, follow_redirects=False)
        if resp.status_code in (302, 303):
            url = urljoin(url, resp.headers["Location"])
            continue
        action = re.search(r'action="(/interaction/[^"]+/login)"', resp.text)
        if resp.status_code != 200 or action is None or posted:
            raise RuntimeError(f"unexpected answer from the provider ({resp.status_code}): {resp.text[:300]}")
        resp = await http.post(
            urljoin(url, action.group(1)),
            data={"username": account.username, "password": password or account.password},
            follow_redirects=False,
        )
        if resp.status_code != 303:
            return ""  # refused at the provider (wrong password)
        posted = True
        url = urljoin(url, resp.headers["Location"])
    raise RuntimeError("the provider never sent the browser back to the client")


async def sign_in_http(http: httpx.AsyncClient, bridge_url: str, account: Account) -> httpx.Response:
    """The whole sign-in over HTTP; the answer of the bridge's callback (200, session cookie set)."""
    callback = await authorize(http, bridge_url, account)
    return await http.get(callback, follow_redirects=False)


async def app_tokens(http: httpx.AsyncClient, provider: IdentityProvider, account: Account) -> dict[str, Any]:
    """What an app gets when ``account`` signs in to it (code + PKCE as a public client): the token
    endpoint's answer, whose ``access_token`` is a JWT for the bridge's API."""
    verifier = secrets.token_urlsafe(48)
    url = prepare_grant_uri(
        f"{provider.issuer}/auth",
        APP_CLIENT_ID,
        "code",
        redirect_uri=APP_REDIRECT,
        scope="openid bridge",
        state=secrets.token_urlsafe(16),
        nonce=secrets.token_urlsafe(16),
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    back = await through_provider(http, url, account, callback_path=urlsplit(APP_REDIRECT).path)
    code = dict(parse_qsl(urlsplit(back).query)).get("code")
    if not code:
        raise RuntimeError("the provider gave the app no code")
    resp = await http.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": APP_REDIRECT,
            "code_verifier": verifier,
            "client_id": APP_CLIENT_ID,
        },
    )
    resp.raise_for_status()
    tokens: dict[str, Any] = resp.json()
    return tokens
