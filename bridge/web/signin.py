"""Signing people in with OpenID Connect: the bridge as the client (Relying Party) of the
organization's OpenID Provider (``[identity_provider]``), authorization code flow with PKCE.

    GET  /inbox/signin            new state, nonce and PKCE verifier, kept server-side (the store's
                                  ``web_signins``) and bound to this browser by a cookie of their own;
                                  redirect to the provider's authorization endpoint
    GET  /inbox/signin/callback   the state is taken (once) and must come back to the same browser;
                                  the code is redeemed with the verifier at the token endpoint; the
                                  ID token is checked against the provider's JWKS (signature, iss,
                                  aud, exp, iat, nonce, at_hash); a new server-side session starts
                                  (``bridge.web.sessions``: a new id, the browser's old one deleted)
    POST /inbox/logout            the session is deleted; then RP-initiated logout at the provider
                                  when it offers an ``end_session_endpoint``

Authlib supplies the protocol (authorization request, PKCE S256, token request body, the OpenID
``CodeIDToken`` claim rules); joserfc verifies signatures; one long-lived httpx client talks to the
provider. Discovery and the JWKS are fetched at start-up (and the JWKS again when a token names a
key it does not hold). Who the person is comes from the ID token's claims only (``role``,
``organization``, ``practitioner_id``, ``sub``), never from anything the browser posts; the
directory still has the last word on each action (``bridge.exchange.authorship``).

Without ``[identity_provider]`` the inbox keeps its token form (``POST /inbox/login``, a token from
the organization's IdP or a service key), for development and for deployments that have no provider
yet; it starts the same kind of server-side session. With a provider configured that form is off.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from aiohttp import web
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from bridge.config import IdentityProviderSettings, Settings
from bridge.errors import AccessError, ConfigError, NotAuthenticatedError, TooManyFailuresError
from bridge.store.sessions import digest
from bridge.web import csrf
from bridge.web.auth import ALGORITHMS, LEEWAY_SECONDS, principal_from_claims
from bridge.web.keys import AUTH_THROTTLE, EXCHANGE, SETTINGS
from bridge.web.page import html
from bridge.web.principal import ROLE_ACTIONS, Principal, actor_for
from bridge.web.sessions import end_session, https, session_principal, start_session

log = logging.getLogger("bridge.web.signin")

CALLBACK_PATH = "/inbox/signin/callback"
BROWSER_COOKIE = "bridge_signin"  # binds a sign-in under way to the browser that started it
SIGNIN_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    algorithms: tuple[str, ...]


def _secret(settings: Settings, cfg: IdentityProviderSettings) -> str | None:
    if cfg.client_secret_env:
        return settings.secret(cfg.client_secret_env, "identity_provider.client_secret_env")
    if cfg.client_secret_file:
        try:
            value = settings.path(cfg.client_secret_file).read_text().strip()
        except OSError as exc:
            reason = f"cannot read the client secret ({exc.strerror or type(exc).__name__})"
            raise ConfigError("identity_provider.client_secret_file", reason) from None
        if not value:
            raise ConfigError("identity_provider.client_secret_file", "the file is empty")
        return value
    return None  # a public client: PKCE alone protects the code


class OidcClient:
    """The bridge as the provider's client. ``await OidcClient.open(settings)``; ``await close()``."""

    def __init__(
        self,
        cfg: IdentityProviderSettings,
        metadata: ProviderMetadata,
        keys: KeySet,
        http: httpx.AsyncClient,
        *,
        client_secret: str | None,
        redirect_url: str,
        after_logout_url: str,
    ) -> None:
        self.cfg = cfg
        self.metadata = metadata
        self._keys = keys
        self._http = http
        self._secret = client_secret
        self.redirect_url = redirect_url
        self.after_logout_url = after_logout_url

    @classmethod
    async def open(cls, settings: Settings, *, http: httpx.AsyncClient | None = None) -> OidcClient:
        cfg = settings.identity_provider
        if cfg is None:
            raise ConfigError("identity_provider", "not configured")
        secret = _secret(settings, cfg)
        public = (settings.server.public_url or "").rstrip("/")
        redirect = cfg.redirect_url or f"{public}{CALLBACK_PATH}"
        parts = urlsplit(redirect)
        after_logout = f"{parts.scheme}://{parts.netloc}/inbox"
        client = http or httpx.AsyncClient(timeout=cfg.timeout_seconds, verify=cfg.verify_tls)
        try:
            metadata = await _discover(client, cfg.issuer)
            keys = await _fetch_keys(client, metadata.jwks_uri)
        except BaseException:
            if http is None:
                await client.aclose()
            raise
        return cls(
            cfg,
            metadata,
            keys,
            client,
            client_secret=secret,
            redirect_url=redirect,
            after_logout_url=after_logout,
        )

    async def close(self) -> None:
        await self._http.aclose()

    def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        url: str = prepare_grant_uri(
            self.metadata.authorization_endpoint,
            self.cfg.client_id,
            "code",
            redirect_uri=self.redirect_url,
            scope=" ".join(self.cfg.scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
        )
        return url

    async def redeem(self, code: str, code_verifier: str) -> dict[str, Any]:
        """The token endpoint's answer for ``code`` (with the PKCE verifier)."""
        extra: dict[str, str] = {}
        auth: httpx.Auth | None = None
        if self._secret is None:
            extra["client_id"] = self.cfg.client_id
        else:  # client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1)
            auth = httpx.BasicAuth(quote(self.cfg.client_id, safe=""), quote(self._secret, safe=""))
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.redirect_url,
            code_verifier=code_verifier,
            **extra,
        )
        try:
            resp = await self._http.post(
                self.metadata.token_endpoint,
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
                auth=auth or httpx.USE_CLIENT_DEFAULT,
            )
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NotAuthenticatedError(
                f"the identity provider did not answer ({type(exc).__name__})"
            ) from None
        if resp.status_code != 200 or not isinstance(data, dict):
            error = data.get("error") if isinstance(data, dict) else None
            raise NotAuthenticatedError(
                f"the identity provider refused the code ({error or resp.status_code})"
            )
        return data

    async def id_token_claims(self, token: dict[str, Any], *, nonce: str) -> dict[str, Any]:
        """The verified claims of the token answer's ID token (OpenID Connect Core §3.1.3.7)."""
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise NotAuthenticatedError("the identity provider sent no ID token")
        registry = JWSRegistry(algorithms=list(self.metadata.algorithms))
        try:
            try:
                decoded = jwt.decode(id_token, self._keys, registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys: fetch them once more
                self._keys = await _fetch_keys(self._http, self.metadata.jwks_uri)
                decoded = jwt.decode(id_token, self._keys, registry=registry)
            params: dict[str, Any] = {"nonce": nonce, "client_id": self.cfg.client_id}
            if isinstance(token.get("access_token"), str):
                params["access_token"] = token["access_token"]  # at_hash, when the token has one
            options = {
                "iss": {"essential": True, "value": self.metadata.issuer},
                "aud": {"essential": True, "value": self.cfg.client_id},
                "exp": {"essential": True},
            }
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(now=int(time.time()), leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError, ConfigError) as exc:
            # the joserfc error names the failing claim ("iss", "aud", "nonce"...); never the token
            detail = getattr(exc, "claim", None) or getattr(exc, "error", None) or type(exc).__name__
            raise NotAuthenticatedError(f"the ID token was refused ({detail})") from None
        return dict(claims)

    def logout_url(self) -> str | None:
        """RP-initiated logout at the provider, back to the inbox afterwards (None: not offered)."""
        end = self.metadata.end_session_endpoint
        if not end:
            return None
        params = [("client_id", self.cfg.client_id), ("post_logout_redirect_uri", self.after_logout_url)]
        url: str = add_params_to_uri(end, params)
        return url


async def _get_json(http: httpx.AsyncClient, url: str, key: str) -> dict[str, Any]:
    try:
        resp = await http.get(url, headers={"Accept": "application/json"})
        resp.raise_for_status()
        data = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError(key, f"cannot read {url} ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(key, f"{url} is not a JSON object")
    return data


async def _discover(http: httpx.AsyncClient, issuer: str) -> ProviderMetadata:
    """OpenID Connect Discovery 1.0; the document must name the configured issuer exactly (§4.3)."""
    doc = await _get_json(http, f"{issuer}/.well-known/openid-configuration", "identity_provider.issuer")
    if str(doc.get("issuer", "")).rstrip("/") != issuer:
        raise ConfigError("identity_provider.issuer", f"the provider calls itself {doc.get('issuer')!r}")
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(field), str):
            raise ConfigError("identity_provider.issuer", f"the provider's discovery document has no {field}")
    offered = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(a for a in offered if a in ALGORITHMS)  # asymmetric only: never HS256 or none
    if not algorithms:
        raise ConfigError(
            "identity_provider.issuer", "the provider signs ID tokens with no algorithm we accept"
        )
    end = doc.get("end_session_endpoint")
    return ProviderMetadata(
        issuer=str(doc["issuer"]),
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        end_session_endpoint=end if isinstance(end, str) else None,
        algorithms=algorithms,
    )


async def _fetch_keys(http: httpx.AsyncClient, url: str) -> KeySet:
    data = await _get_json(http, url, "identity_provider.issuer")
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            "identity_provider.issuer", f"the provider's JWKS cannot be read ({type(exc).__name__})"
        ) from None


# --- pages and handlers ---------------------------------------------------------------------------

OIDC = web.AppKey("oidc_client", OidcClient)


def configured(request: web.Request) -> bool:
    return request.app[SETTINGS].identity_provider is not None


def signed_out_page(request: web.Request, *, status: int = 401, error: str | None = None) -> web.Response:
    """What ``/inbox`` shows to someone not signed in: the provider's button, or the token form."""
    if configured(request):
        return html("signin.html", status=status, error=error)
    return html("login.html", status=status, error=error)


def no_inbox_page(request: web.Request, principal: Principal) -> web.Response:
    """Signed in, but the role has no inbox (an integrator): say so, and offer sign-out."""
    return html("account.html", status=403, principal=principal, csrf_token=csrf.page_token(request))


async def begin(request: web.Request) -> web.StreamResponse:
    client = request.app[OIDC]
    try:  # an address that keeps failing sign-ins does not get to start more (each is a row)
        request.app[AUTH_THROTTLE].check(request.remote or "unknown")
    except TooManyFailuresError as exc:
        resp = signed_out_page(request, status=429, error=exc.message)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    state, nonce, verifier, browser = (secrets.token_urlsafe(32) for _ in range(4))
    now = datetime.now(UTC)
    sessions = request.app[EXCHANGE].store.sessions
    await sessions.purge(now=now)  # sessions and sign-ins past their end (rare enough to do here)
    await sessions.begin_signin(
        state,
        browser=browser,
        nonce=nonce,
        code_verifier=verifier,
        return_to="/inbox",
        now=now,
        expires_at=now + SIGNIN_TTL,
    )
    location = client.authorization_url(state=state, nonce=nonce, code_verifier=verifier)
    resp = web.Response(status=303, headers={"Location": location})
    # Lax: the provider sends the browser back with a top-level GET from its own site
    resp.set_cookie(
        BROWSER_COOKIE,
        browser,
        httponly=True,
        samesite="Lax",
        path="/inbox/signin",
        max_age=int(SIGNIN_TTL.total_seconds()),
        secure=https(request),
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def _complete(request: web.Request) -> Principal:
    """Everything the callback checks, in order; a refusal is an :class:`AccessError`."""
    query = request.query
    if "error" in query:  # the person cancelled, or the provider refused
        raise NotAuthenticatedError(
            f"the identity provider did not sign you in ({query.get('error', '')[:64]})"
        )
    state, code = query.get("state", ""), query.get("code", "")
    if not state or not code:
        raise NotAuthenticatedError("the sign-in answer has no state or no code")
    pending = await request.app[EXCHANGE].store.sessions.take_signin(state, now=datetime.now(UTC))
    if pending is None:
        raise NotAuthenticatedError("this sign-in is unknown, used or expired: start again")
    browser = request.cookies.get(BROWSER_COOKIE, "")
    if not browser or not secrets.compare_digest(digest(browser), pending.browser_hash):
        # a sign-in started in another browser (login CSRF: someone else's code and state)
        raise NotAuthenticatedError("this sign-in was started in another browser: start again")
    client = request.app[OIDC]
    token = await client.redeem(code, pending.code_verifier)
    claims = await client.id_token_claims(token, nonce=pending.nonce)
    principal = principal_from_claims(claims, via="oidc", what="ID token")
    if principal.organization != request.app[SETTINGS].organization.id:
        raise AccessError("this account belongs to another organization")
    if not ROLE_ACTIONS.get(principal.role):
        raise AccessError(f"the role {principal.role.value} has nothing to do in the bridge")
    return principal


async def callback(request: web.Request) -> web.StreamResponse:
    throttle, source = request.app[AUTH_THROTTLE], request.remote or "unknown"
    audit = request.app[EXCHANGE].store.audit
    try:
        throttle.check(source)
        try:
            principal = await _complete(request)
        except NotAuthenticatedError as exc:
            throttle.failed(source, "oidc", exc)
            raise
    except AccessError as exc:
        if isinstance(exc, TooManyFailuresError):
            resp = signed_out_page(request, status=429, error=exc.message)
            resp.headers["Retry-After"] = str(exc.retry_after)
            return resp
        status = 401 if isinstance(exc, NotAuthenticatedError) else 403
        await audit.append(
            actor="oidc:unknown",
            action="session.signin",
            subject="inbox",
            at=datetime.now(UTC),
            outcome="refused",
            source=source,
            detail={"code": exc.code},
        )
        # the browser binding stays: a forged callback must not spoil the person's own sign-in
        return signed_out_page(request, status=status, error=exc.message)
    # Strict cookies are not sent on a navigation the provider's site started, so the browser
    # continues to the inbox from a page of ours (a same-site navigation) rather than by a redirect
    resp = html("signed_in.html", return_to="/inbox")
    await start_session(request, principal, resp)
    resp.del_cookie(BROWSER_COOKIE, path="/inbox/signin")
    await audit.append(
        actor=actor_for(principal).name,
        action="session.signin",
        subject="inbox",
        at=datetime.now(UTC),
        source=source,
        detail={"via": "oidc", "role": principal.role.value},
    )
    log.info("signed in", extra={"event": "signin"})
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    """Delete the session; then sign out at the provider too when it offers that."""
    target = "/inbox"
    if configured(request) and OIDC in request.app:
        target = request.app[OIDC].logout_url() or target
    resp = web.Response(status=303, headers={"Location": target})
    await end_session(request, resp)
    return resp


def setup(app: web.Application) -> None:
    """The session middleware; with a provider configured, its client (opened with the app) and
    the sign-in routes. Sign-out (``/inbox/logout``) is routed by the inbox page to :func:`logout`."""
    app.middlewares.append(session_principal)  # inside the error mapping: a store failure is a 503
    settings = app[SETTINGS]
    if settings.identity_provider is not None:

        async def oidc_ctx(app: web.Application) -> AsyncIterator[None]:
            client = await OidcClient.open(settings)
            app[OIDC] = client
            yield
            await client.close()

        # first: a provider that cannot be read stops the start before the store and workers open
        app.cleanup_ctx.insert(0, oidc_ctx)
        app.router.add_get("/inbox/signin", begin, name="inbox_signin")
        app.router.add_get(CALLBACK_PATH, callback, name="inbox_signin_callback")
