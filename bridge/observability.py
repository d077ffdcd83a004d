"""Structured JSON logs with request ids, and the Prometheus metrics the bridge exports.

Logs never carry PHI: the formatter writes only the message and a fixed allow-list of extra fields
(ids, codes, counts, durations), so a stray ``extra={"text": note.text}`` is dropped rather than
printed. Messages themselves are written by us and name records by id only.

Metrics live in a :class:`Metrics` object with its own ``CollectorRegistry`` (one per app, so two
apps in one test process do not collide). The outbox counts (queued, delivered, dead, retries) are
read from the store when ``/metrics`` is scraped; delivery latency is observed by whoever delivers,
through :meth:`Metrics.observe_delivery`.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("bridge_request_id", default=None)

# Only these ``extra`` keys reach the log line; everything else is dropped (PHI guard).
SAFE_FIELDS = frozenset(
    {
        "request_id",
        "method",
        "path",
        "route",
        "status",
        "duration_ms",
        "code",
        "principal",
        "role",
        "organization",
        "submission_id",
        "referral_id",
        "record_id",
        "endpoint",
        "fhir_ids",
        "error_type",
        "count",
        "port",
        "event",
        "source",  # a caller's address (failed sign-ins)
        "credential",  # the kind of credential that failed ("api_key", "bearer"), never its value
        "failures",
        "reason",
    }
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, ``request_id`` + safe extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id_var.get()
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key in SAFE_FIELDS and key not in _STANDARD and key != "request_id":
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # the exception type and where, never its message (it may quote input)
            out["error_type"] = record.exc_info[0].__name__
            tb = record.exc_info[2]
            frames = []
            while tb is not None:
                frames.append(f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}")
                tb = tb.tb_next
            out["where"] = frames[-5:]
        return json.dumps(out, default=str)


def configure_logging(level: int = logging.INFO, stream: TextIO | None = None) -> logging.Handler:
    """Send the ``bridge`` loggers to ``stream`` (stderr) as JSON lines; returns the handler.

    The same handler goes on the root logger (warnings and up), so what aiohttp, asyncio or
    SQLAlchemy log about an exception passes the same allow-list: the exception's type and
    where, never its message, which may quote a request body.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bridge")
    root = logging.getLogger()
    for owner in (logger, root):
        for old in [h for h in owner.handlers if isinstance(h.formatter, JsonFormatter)]:
            owner.removeHandler(old)
        owner.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    # aiohttp's access log would print raw URLs with query strings; ours logs the route instead
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler


# the Prometheus text format 0.0.4, which ``generate_latest`` writes for our (plain ASCII) names and
# every scraper reads; prometheus_client's own CONTENT_TYPE_LATEST moved to 1.0.0 in 0.22
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The bridge's Prometheus metrics, in a registry of their own, with the standard process,
    platform and garbage-collector collectors (``process_*``, ``python_*``). It is also what the
    exchange reports its events to (:class:`bridge.exchange.events.ExchangeEvents`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.deliveries = Counter(
            "bridge_deliveries",
            "Delivery attempts by endpoint and outcome (delivered, retry, timeout, dead)",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.referrals_received = Counter(
            "bridge_referrals_received",
            "Referrals that arrived in the inbox (new, or a new version), by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.referral_actions = Counter(
            "bridge_referral_actions",
            "Referrals acted on by peers (the EHR's Task moved), by endpoint and action",
            ["endpoint", "action"],
            registry=self.registry,
        )
        self.verdicts = Counter(
            "bridge_policy_verdicts",
            "Policy verdicts on notes and sessions (allow, warn, hold, block)",
            ["subject", "verdict"],
            registry=self.registry,
        )
        self.rule_hits = Counter(
            "bridge_policy_rule_hits",
            "Rules that fired in a policy verdict, by rule and severity",
            ["subject", "rule", "severity"],
            registry=self.registry,
        )
        self.backlog_age = Gauge(
            "bridge_outbox_oldest_pending_seconds",
            "Age of the oldest item waiting for delivery (queued or sending), by endpoint; 0 when none",
            ["endpoint"],
            registry=self.registry,
        )
        self.endpoint_failures = Gauge(
            "bridge_endpoint_consecutive_failures",
            "Consecutive failed requests (time-outs included) to an endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.endpoint_last_success = Gauge(
            "bridge_endpoint_last_success_timestamp_seconds",
            "Unix time of the endpoint's last successful answer (absent: none since start)",
            ["endpoint"],
            registry=self.registry,
        )
        self.outbox_items = Gauge(
            "bridge_outbox_items",
            "Outbox items by endpoint and state (queued, delivered, dead ...), read from the store",
            ["endpoint", "state"],
            registry=self.registry,
        )
        self.outbox_retries = Gauge(
            "bridge_outbox_retries",
            "Delivery attempts beyond the first, summed over the outbox, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.outbox_counts_available = Gauge(
            "bridge_outbox_counts_available",
            "1 when the outbox gauges were read from the store at this scrape, 0 when it could not be read",
            registry=self.registry,
        )
        self.delivery_seconds = Histogram(
            "bridge_delivery_seconds",
            "Time to deliver one outbox item to an EHR endpoint",
            ["endpoint", "outcome"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.breaker_open = Gauge(
            "bridge_endpoint_breaker_open",
            "1 while the circuit breaker for an endpoint is open",
            ["endpoint"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "bridge_http_requests",
            "API requests answered, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "bridge_http_request_seconds",
            "API request latency by route",
            ["method", "route"],
            registry=self.registry,
        )

    # --- the exchange's events (ids, names and codes only) -----------------------------------------

    def delivery(self, endpoint: str, outcome: str) -> None:
        self.deliveries.labels(endpoint=endpoint, outcome=outcome).inc()

    def referral_received(self, endpoint: str) -> None:
        self.referrals_received.labels(endpoint=endpoint).inc()

    def referral_action(self, endpoint: str, action: str) -> None:
        self.referral_actions.labels(endpoint=endpoint, action=action).inc()

    def verdict(self, subject: str, verdict: str, fired: Sequence[tuple[str, str]]) -> None:
        self.verdicts.labels(subject=subject, verdict=verdict).inc()
        for rule, severity in fired:
            self.rule_hits.labels(subject=subject, rule=rule, severity=severity).inc()

    def set_endpoint(
        self, endpoint: str, *, breaker_open: bool, failures: int, last_success: float | None
    ) -> None:
        """The endpoint's breaker and health, read from its client at each scrape."""
        self.breaker_open.labels(endpoint=endpoint).set(1 if breaker_open else 0)
        self.endpoint_failures.labels(endpoint=endpoint).set(failures)
        if last_success is not None:
            self.endpoint_last_success.labels(endpoint=endpoint).set(last_success)

    def set_backlog_age(self, endpoint: str, seconds: float) -> None:
        self.backlog_age.labels(endpoint=endpoint).set(max(0.0, seconds))

    def observe_delivery(self, endpoint: str, seconds: float, outcome: str) -> None:
        """Record one delivery attempt (``outcome``: delivered, retry, dead)."""
        self.delivery_seconds.labels(endpoint=endpoint, outcome=outcome).observe(seconds)

    def set_outbox(self, counts: Mapping[tuple[str, str], int], retries: Mapping[str, int]) -> None:
        """Replace the outbox gauges with a fresh snapshot: ``{(endpoint, state): n}``."""
        self.outbox_items.clear()
        for (endpoint, state), n in counts.items():
            self.outbox_items.labels(endpoint=endpoint, state=state).set(n)
        self.outbox_retries.clear()
        for endpoint, n in retries.items():
            self.outbox_retries.labels(endpoint=endpoint).set(n)
        self.outbox_counts_available.set(1)

    def outbox_unavailable(self) -> None:
        """The store could not be read: drop the last snapshot rather than serve it as current."""
        self.outbox_items.clear()
        self.outbox_retries.clear()
        self.backlog_age.clear()
        self.outbox_counts_available.set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
