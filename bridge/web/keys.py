"""Typed application and request keys, all in one place (aiohttp ``web.AppKey``)."""

from __future__ import annotations

from aiohttp import web

from bridge.config import Settings
from bridge.exchange.wiring import ExchangeService
from bridge.observability import Metrics
from bridge.web.auth import Authenticator
from bridge.web.idempotency import IdempotencyCache
from bridge.web.principal import Principal
from bridge.web.throttle import FailedAuthThrottle

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
AUTH_THROTTLE = web.AppKey("auth_throttle", FailedAuthThrottle)  # failed sign-ins per source address
EXCHANGE = web.AppKey("exchange", ExchangeService)
IDEMPOTENCY = web.AppKey("idempotency", IdempotencyCache)
NOTIFY_TOKEN = web.AppKey("notify_token", str)  # "" when the notification endpoint is not configured
DIRECTORY_MISSING = web.AppKey("directory_missing", str)  # the directory file looked for, when absent

# per-request values (set by the middlewares and the auth helpers)
REQUEST_ID = web.RequestKey("request_id", str)
PRINCIPAL = web.RequestKey("principal", Principal)
