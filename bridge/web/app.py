"""``create_app(settings)``: routes, middlewares and the resources opened/closed in ``cleanup_ctx``."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.exchange.directory import Directory, directory_file, load_directory
from bridge.exchange.wiring import ExchangeService, running_exchange
from bridge.observability import Metrics
from bridge.web import inbox, ops, signin
from bridge.web.auth import Authenticator
from bridge.web.idempotency import IdempotencyCache, StoredResponse, fingerprint
from bridge.web.keys import (
    AUTH_THROTTLE,
    AUTHENTICATOR,
    DIRECTORY_MISSING,
    EXCHANGE,
    IDEMPOTENCY,
    METRICS,
    NOTIFY_TOKEN,
    SETTINGS,
)
from bridge.web.middlewares import errors, observe
from bridge.web.openapi import build_openapi
from bridge.web.requests import authenticate
from bridge.web.routes import ROUTES, Handler, Route
from bridge.web.throttle import FailedAuthThrottle

log = logging.getLogger("bridge.web")

ExchangeFactory = Callable[[Settings], AbstractAsyncContextManager[ExchangeService]]
STATIC_DIR = Path(str(package_files("bridge.web").joinpath("static")))  # package data (wheel too)
MAX_BODY_BYTES = 1024 * 1024  # a note is at most 100 000 characters


def _idempotent(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return await handler(request)
        principal = authenticate(request, allow_cookie=False)
        raw = await request.read()  # cached by aiohttp: the handler reads it again

        async def compute() -> StoredResponse:
            resp = await handler(request)
            assert isinstance(resp, web.Response) and isinstance(resp.body, bytes)
            return StoredResponse(resp.status, resp.body, resp.content_type)

        stored, replayed = await request.app[IDEMPOTENCY].run(
            f"{principal.via}:{principal.subject}",
            key,
            fingerprint(request.method, request.path, raw),
            compute,
        )
        resp = web.Response(status=stored.status, body=stored.body, content_type=stored.content_type)
        if replayed:
            resp.headers["Idempotent-Replayed"] = "true"
        return resp

    return wrapped


@functools.lru_cache(maxsize=8)  # building it walks every model's schema: once per base URL is enough
def _openapi_bytes(server_url: str) -> bytes:
    return json.dumps(build_openapi(server_url=server_url)).encode()


async def _openapi(request: web.Request) -> web.Response:
    body = _openapi_bytes(f"{request.scheme}://{request.host}")
    return web.Response(body=body, content_type="application/json")


def _add(app: web.Application, route: Route) -> None:
    handler = _idempotent(route.handler) if route.idempotent else route.handler
    app.router.add_route(route.method, route.path, handler, name=route.name)


def _notify_token(settings: Settings) -> str:
    env = settings.server.notification_token_env
    value = os.environ.get(env, "") if env else ""
    if env and not value:
        log.warning("notification endpoint disabled: token environment variable not set")
    return value


async def jwks_from_url(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            resp = await client.get(url)
            resp.raise_for_status()
            data = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ConfigError("api_auth.jwks_url", f"cannot fetch the JWKS ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError("api_auth.jwks_url", "the JWKS is not a JSON object")
    return data


def _observe_latency(exchange: ExchangeService, metrics: Metrics) -> None:
    """Time every request each EHR client makes (those that got no answer too: ``timeout``,
    ``error``), and count the exchange's deliveries, referrals and verdicts."""
    for name, client in exchange.clients.items():

        def finished(seconds: float, status: int, endpoint: str = name) -> None:
            outcome = "ok" if status < 400 else f"{status // 100}xx"
            metrics.observe_delivery(endpoint, seconds, outcome)

        def no_answer(seconds: float, kind: str, endpoint: str = name) -> None:
            metrics.observe_delivery(endpoint, seconds, kind)

        client.observe(finished, no_answer)
    exchange.observe(metrics)


def create_app(
    settings: Settings,
    *,
    directory: Directory | None = None,
    exchange_factory: ExchangeFactory | None = None,
    authenticator: Authenticator | None = None,
    metrics: Metrics | None = None,
) -> web.Application:
    """The bridge's aiohttp application over a running exchange: by default opened from
    ``settings`` with ``directory`` (else the directory file beside the config), its workers
    started; ``exchange_factory`` opens it otherwise (e.g. without workers)."""
    # a request line up to 16 KiB reaches the app (an overlong id answers 400 JSON, not aiohttp's
    # plain-text 400 from the parser, which stays the answer beyond that)
    app = web.Application(
        middlewares=[observe, errors],
        client_max_size=MAX_BODY_BYTES,
        handler_args={"max_line_size": 16 * 1024},
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics or Metrics()
    app[IDEMPOTENCY] = IdempotencyCache()
    app[AUTH_THROTTLE] = FailedAuthThrottle()
    app[NOTIFY_TOKEN] = _notify_token(settings)
    if authenticator is not None:
        app[AUTHENTICATOR] = authenticator
    elif not settings.api_auth.jwks_url:
        app[AUTHENTICATOR] = Authenticator.from_settings(settings)

    async def jwks_ctx(app: web.Application) -> AsyncIterator[None]:
        if AUTHENTICATOR not in app:
            assert settings.api_auth.jwks_url is not None
            jwks = await jwks_from_url(settings.api_auth.jwks_url)
            app[AUTHENTICATOR] = Authenticator.from_settings(settings, jwks=jwks)
        yield

    if directory is None and exchange_factory is None and not directory_file(settings).exists():
        app[DIRECTORY_MISSING] = str(directory_file(settings))

    async def exchange_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = (
            exchange_factory(settings)
            if exchange_factory is not None
            else running_exchange(settings, directory=directory or load_directory(settings))
        )
        async with opened as exchange:
            _observe_latency(exchange, app[METRICS])
            app[EXCHANGE] = exchange
            yield

    app.cleanup_ctx.append(jwks_ctx)
    app.cleanup_ctx.append(exchange_ctx)

    for route in ROUTES:
        _add(app, route)
    app.router.add_get("/api/openapi.json", _openapi, name="openapi")
    signin.setup(app)  # sessions (middleware) and, when configured, the OpenID Provider's client
    inbox.setup(app)
    ops.setup(app)
    app.router.add_static("/static", STATIC_DIR, name="static")
    return app
