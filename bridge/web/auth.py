"""Authentication for the bridge's own API: bearer JWTs from the organization's IdP, static API keys.

JWTs are verified with joserfc against the JWKS named in ``[api_auth]`` (``jwks_file``, or
``jwks_url`` fetched once at start-up), checking ``iss``, ``aud`` and ``exp``. Claims give the
caller: ``role`` (a :class:`bridge.domain.Role` value), ``organization`` and ``practitioner_id``.

API keys (service accounts) are listed in ``[[api_auth.api_keys]]``; each key's value comes from the
environment variable it names and is sent as ``X-API-Key``. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from bridge.config import Settings
from bridge.domain import Role
from bridge.errors import ConfigError, IdentityMismatchError, NotAuthenticatedError
from bridge.exchange.authorship import PEER_ROLES
from bridge.web.principal import Principal

# Asymmetric algorithms only: a shared-secret HS256 token from an IdP would make the JWKS a secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "EdDSA")
LEEWAY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class _ApiKey:
    name: str
    secret: bytes
    role: Role
    organization: str


def _check_jwks(jwks: Any, path: str) -> None:
    """A JWKS that would switch bearer tokens off (``[]``, no keys) or cannot be read is a start-up
    error naming the setting, never a silent "no JWT" nor a traceback."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError(path, "the JWKS must be an object with a non-empty 'keys' list")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(path, f"the JWKS cannot be read ({type(exc).__name__})") from None


class Authenticator:
    """Turns request headers into a :class:`Principal` or raises :class:`NotAuthenticatedError`."""

    def __init__(
        self,
        *,
        issuer: str | None,
        audience: str | None,
        jwks: dict[str, Any] | None,
        api_keys: Sequence[_ApiKey] = (),
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._keys = KeySet.import_key_set(jwks) if jwks else None  # type: ignore[arg-type]
        self._api_keys = tuple(api_keys)
        # a client sends the same token until it expires; its signature (an ES384 or RS384
        # verification, most of a submit's authentication time) is checked once per token string.
        # The claims (expiry, issuer, audience) are checked on every request.
        self._signed_claims = lru_cache(maxsize=1024)(self._verify_signature)

    @property
    def signs_in(self) -> bool:
        """An identity provider's keys are loaded: people can sign in (API keys are for services)."""
        return self._keys is not None

    @classmethod
    def from_settings(cls, settings: Settings, *, jwks: dict[str, Any] | None = None) -> Authenticator:
        """Build from ``[api_auth]``; ``jwks`` overrides the file (used after fetching ``jwks_url``)."""
        cfg = settings.api_auth
        if jwks is None and cfg.jwks_file:
            path = settings.path(cfg.jwks_file)
            try:
                jwks = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                reason = f"cannot read a JWKS from it ({type(exc).__name__})"
                raise ConfigError("api_auth.jwks_file", reason) from None
        if jwks is not None:
            _check_jwks(jwks, "api_auth.jwks_url" if cfg.jwks_url else "api_auth.jwks_file")
        if jwks is not None and not (cfg.issuer and cfg.audience):
            raise ConfigError("api_auth.issuer", "issuer and audience are required when a JWKS is set")
        keys = [
            _ApiKey(
                name=k.name,
                secret=settings.secret(k.key_env, f"api_auth.api_keys[{i}].key_env").encode(),
                role=Role(k.role),
                organization=k.organization,
            )
            for i, k in enumerate(cfg.api_keys)
        ]
        return cls(issuer=cfg.issuer, audience=cfg.audience, jwks=jwks, api_keys=keys)

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        if api_key is not None:
            return self._by_api_key(api_key)
        if authorization is None:
            raise NotAuthenticatedError("send a bearer token (Authorization) or an X-API-Key header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthenticatedError("the Authorization header must be 'Bearer <token>'")
        return self._by_jwt(token.strip())

    def _by_api_key(self, presented: str) -> Principal:
        try:
            given = presented.encode()
        except UnicodeEncodeError:  # bytes that are not UTF-8 in the header: no key of ours
            raise NotAuthenticatedError("unknown API key") from None
        match: _ApiKey | None = None
        # compare against every key, so timing does not reveal which one (or whether any) matched
        for key in self._api_keys:
            if hmac.compare_digest(given, key.secret):
                match = key
        if match is None:
            raise NotAuthenticatedError("unknown API key")
        return Principal(subject=match.name, role=match.role, organization=match.organization, via="api_key")

    def _by_jwt(self, token: str) -> Principal:
        if self._keys is None:
            raise NotAuthenticatedError("bearer tokens are not accepted: no JWKS is configured")
        try:
            claims = self._signed_claims(token)
            JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                now=lambda: int(time.time()),
                iss={"essential": True, "value": self.issuer or ""},
                aud={"essential": True, "value": self.audience or ""},
                exp={"essential": True},
            ).validate(dict(claims))
        except (JoseError, ValueError) as exc:
            # the joserfc error names the failing claim (e.g. "exp"); never echo the token
            raise NotAuthenticatedError(f"bearer token refused ({type(exc).__name__})") from None
        return principal_from_claims(claims, via="jwt", what="bearer token")

    def _verify_signature(self, token: str) -> Mapping[str, Any]:
        """The claims of a token whose signature one of our keys verifies (raises otherwise;
        refusals are not cached)."""
        assert self._keys is not None
        return MappingProxyType(jwt.decode(token, self._keys, algorithms=list(ALGORITHMS)).claims)


def principal_from_claims(claims: Mapping[str, Any], *, via: str, what: str) -> Principal:
    """The caller a verified token names: ``role``, ``organization``, ``sub``, and for peers
    ``practitioner_id`` (bearer tokens and the ID tokens of a browser sign-in alike). ``what``
    names the token in the refusal."""
    role, org = claims.get("role"), claims.get("organization")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise NotAuthenticatedError(f"{what} has no valid 'role' claim")
    if not isinstance(org, str) or not org:
        raise NotAuthenticatedError(f"{what} has no 'organization' claim")
    practitioner = claims.get("practitioner_id")
    if role in PEER_ROLES and not (isinstance(practitioner, str) and practitioner):
        # a person signs in as themselves: the directory decides who that is (issue 10)
        raise IdentityMismatchError(f"a peer's {what} must name its practitioner_id", rule="identity.unknown")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        # the subject scopes idempotency keys and names the caller: tokens without one would share
        raise NotAuthenticatedError(f"{what} has no 'sub' claim")
    return Principal(
        subject=sub,
        role=Role(role),
        organization=org,
        practitioner_id=practitioner if isinstance(practitioner, str) else None,
        via=via,
    )
