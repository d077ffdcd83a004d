"""Authentication to an EHR endpoint, as ``httpx.Auth`` subclasses.

- ``none``: no header.
- ``bearer``: a static token read from the environment (``auth.token_env``).
- ``smart``: SMART Backend Services (https://hl7.org/fhir/smart-app-launch/backend-services.html):
  ``client_credentials`` grant with a ``private_key_jwt`` client assertion signed RS384 or ES384 by
  joserfc, carrying ``kid``, a unique ``jti`` and ``exp`` under 5 minutes ahead. The token endpoint
  comes from ``auth.token_url`` or ``{base}/.well-known/smart-configuration``. The access token is
  cached until shortly before it expires; a 401 answer drops it, fetches a new one and resends the
  request once. A second 401 goes back to the caller (and becomes :class:`~bridge.errors.AuthError`).

Keys come from a PEM file or an environment variable; neither the key nor any token is ever logged or
put into an error message.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from bridge.clients.status import error_for_response
from bridge.config import EndpointAuth, EndpointSettings
from bridge.errors import AuthError, ConfigError, FhirHttpError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# well under the 5 minutes SMART allows, so a few seconds of clock skew never get the assertion refused
ASSERTION_LIFETIME_SECONDS = 240

SigningKey = RSAKey | ECKey


class BearerAuth(httpx.Auth):
    """A static bearer token."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:  # never show the token
        return "BearerAuth(***)"


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # clock time after which we fetch a new one


class SmartBackendAuth(httpx.Auth):
    """SMART Backend Services client (client_credentials + private_key_jwt).

    ``clock`` (epoch seconds) decides when the cached token is due; tests pass a fake one to move
    past expiry without waiting. Assertions are always stamped with the real time: the token
    endpoint checks them against its own clock.
    ``tokens_fetched`` counts token requests (observability and tests).
    """

    requires_response_body = True

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        key: SigningKey,
        alg: str = "RS384",
        kid: str | None = None,
        scope: str | None = None,
        token_url: str | None = None,
        endpoint: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_key(key, alg, "auth.private_key_file")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._key = key
        self.alg = alg
        self.kid = kid or key.thumbprint()
        self.scope = scope
        self.token_url = token_url
        self.endpoint = endpoint
        self._clock = clock
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.tokens_fetched = 0
        self.granted_scope: str | None = None

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, alg={self.alg!r}, kid={self.kid!r})"

    def invalidate(self) -> None:
        """Forget the cached token (the next request fetches a new one)."""
        self._token = None

    def client_assertion(self, token_url: str) -> str:
        """A freshly signed assertion: its own ``jti``, ``exp`` 4 minutes ahead."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
        }
        header = {"alg": self.alg, "kid": self.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self._key, algorithms=[self.alg])

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise TypeError("SmartBackendAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = self._token
        if used is None or self._clock() >= used.refresh_at:
            async with self._lock:
                # another request may have fetched one while this one waited for the lock
                if self._token is None or self._clock() >= self._token.refresh_at:
                    if self.token_url is None:
                        discovery = yield self._discovery_request()
                        await discovery.aread()  # overriding async_auth_flow means reading ourselves
                        self.token_url = self._parse_discovery(discovery)
                    answer = yield self._token_request(self.token_url)
                    await answer.aread()
                    self._token = self._parse_token(answer)
                used = self._token
        assert used is not None
        request.headers["Authorization"] = f"Bearer {used.value}"
        response = yield request
        if response.status_code != 401:
            return
        await response.aread()
        # one refresh on 401: the server may have restarted, rotated keys or expired us early
        async with self._lock:
            if self._token is used or self._token is None:
                assert self.token_url is not None
                answer = yield self._token_request(self.token_url)
                await answer.aread()
                self._token = self._parse_token(answer)
            fresh = self._token
        request.headers["Authorization"] = f"Bearer {fresh.value}"
        yield request

    # --- the token conversation ------------------------------------------------------------------

    def _discovery_request(self) -> httpx.Request:
        return httpx.Request(
            "GET", f"{self.base_url}/.well-known/smart-configuration", headers={"Accept": "application/json"}
        )

    def _parse_discovery(self, response: httpx.Response) -> str:
        if response.status_code != 200:
            raise self._failure(response, "SMART configuration discovery")
        try:
            url = response.json().get("token_endpoint")
        except ValueError:
            url = None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise AuthError(
                f"{self._where()}.well-known/smart-configuration names no token_endpoint",
                endpoint=self.endpoint,
            )
        return url

    def _token_request(self, token_url: str) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(token_url),
        }
        if self.scope:
            form["scope"] = self.scope
        return httpx.Request("POST", token_url, data=form, headers={"Accept": "application/json"})

    def _parse_token(self, response: httpx.Response) -> _Token:
        if response.status_code != 200:
            raise self._failure(response, "token request")
        try:
            body = response.json()
            value = body["access_token"]
            lifetime = float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                f"{self._where()}token endpoint answered 200 without a usable access_token",
                endpoint=self.endpoint,
                status=200,
            ) from None
        self.tokens_fetched += 1
        self.granted_scope = body.get("scope")
        # refresh a little early: 10% of the lifetime, at most a minute
        margin = min(60.0, lifetime / 10)
        return _Token(str(value), self._clock() + lifetime - margin)

    def _failure(self, response: httpx.Response, what: str) -> Exception:
        status = response.status_code
        if status in (429, 502, 503, 504):
            err: FhirHttpError = error_for_response(response, endpoint=self.endpoint)
            return err
        detail = ""
        try:
            body = response.json()
            if isinstance(body, dict) and "error" in body:
                # OAuth error codes and descriptions talk about the client and its assertion, never PHI
                detail = f": {body['error']}"
                if body.get("error_description"):
                    detail += f" ({str(body['error_description'])[:200]})"
        except ValueError:
            pass
        return AuthError(
            f"{self._where()}{what} refused for client {self.client_id!r} with {status}{detail}",
            endpoint=self.endpoint,
            status=status,
        )

    def _where(self) -> str:
        return f"{self.endpoint}: " if self.endpoint else ""


# --- keys and settings ---------------------------------------------------------------------------


def _check_key(key: SigningKey, alg: str, key_path: str) -> None:
    if alg == "RS384" and not isinstance(key, RSAKey):
        raise ConfigError(key_path, "alg RS384 needs an RSA private key")
    if alg == "ES384" and not (isinstance(key, ECKey) and key.curve_name == "P-384"):
        raise ConfigError(key_path, "alg ES384 needs an EC P-384 private key")
    if not key.is_private:
        raise ConfigError(key_path, "is a public key; the bridge signs with the private key")


def import_private_key(pem: bytes | str, alg: str, key_path: str) -> SigningKey:
    """Parse a PEM private key for ``alg``; problems are ConfigErrors naming ``key_path``."""
    cls: type[RSAKey] | type[ECKey] = RSAKey if alg == "RS384" else ECKey
    try:
        key = cls.import_key(pem)
    except (JoseError, ValueError, TypeError):
        # the exception text could quote key material: say only what kind of key was expected
        kind = "RSA" if alg == "RS384" else "EC P-384"
        raise ConfigError(key_path, f"not a PEM {kind} private key") from None
    _check_key(key, alg, key_path)
    return key


def load_private_key(auth: EndpointAuth, key_path: str, base_dir: Path | None = None) -> SigningKey:
    """The signing key from ``auth.private_key_file`` (relative to ``base_dir``) or ``private_key_env``."""
    if auth.private_key_file:
        path = Path(auth.private_key_file)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{key_path}.private_key_file", f"cannot read key file: {exc.strerror}"
            ) from None
        return import_private_key(pem, auth.alg, f"{key_path}.private_key_file")
    if auth.private_key_env:
        pem_text = os.environ.get(auth.private_key_env)
        if not pem_text:
            raise ConfigError(
                f"{key_path}.private_key_env", f"environment variable {auth.private_key_env} is not set"
            )
        return import_private_key(pem_text, auth.alg, f"{key_path}.private_key_env")
    raise ConfigError(f"{key_path}.private_key_file", "required when type = 'smart' (or private_key_env)")


def auth_from_settings(
    name: str,
    endpoint: EndpointSettings,
    *,
    base_dir: Path | None = None,
    clock: Callable[[], float] = time.time,
) -> httpx.Auth | None:
    """The ``httpx.Auth`` for a configured endpoint (None for ``type = "none"``)."""
    auth = endpoint.auth
    key_path = f"endpoints.{name}.auth"
    if auth.type == "none":
        return None
    if auth.type == "bearer":
        assert auth.token_env is not None  # the schema requires it
        token = os.environ.get(auth.token_env)
        if not token:
            raise ConfigError(f"{key_path}.token_env", f"environment variable {auth.token_env} is not set")
        return BearerAuth(token)
    assert auth.client_id is not None  # the schema requires it for smart
    return SmartBackendAuth(
        base_url=endpoint.base_url,
        client_id=auth.client_id,
        key=load_private_key(auth, key_path, base_dir),
        alg=auth.alg,
        kid=auth.kid,
        scope=auth.scope,
        token_url=auth.token_url,
        endpoint=name,
        clock=clock,
    )
