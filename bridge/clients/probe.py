"""Probe an EHR endpoint for ``bridge check``: reachability, TLS, metadata, token, access, capabilities.

Each probe step becomes a :class:`~bridge.clients.capabilities.Finding`; a ``fail`` is what stops the
bridge working there (unreachable, auth refused, no way to write notes), a ``warn`` is something the
bridge works around and says how. The probe only reads (metadata, SMART configuration,
``_summary=count`` searches, a read of an id that does not exist, a read-only transaction): it never
writes to the EHR. What the CapabilityStatement does not list is settled by those probes where it
can be, and otherwise said to be assumed (capabilities are evidence, not gospel).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bridge.clients.auth import BearerAuth, SmartBackendAuth, auth_from_settings
from bridge.clients.capabilities import TRANSACTION, EndpointCapabilities, Finding, Level
from bridge.clients.fhir import AsyncFhirClient
from bridge.clients.retry import RetryPolicy
from bridge.clients.status import refusal
from bridge.config import EndpointSettings, Settings
from bridge.errors import (
    AuthError,
    ConfigError,
    ExchangeError,
    FhirAuthError,
    FhirHttpError,
    InvalidResourceError,
    TransportError,
)

# an interactive check should answer quickly: two tries, a short budget
PROBE_RETRY = RetryPolicy(max_seconds=10.0, max_attempts=2, initial_wait=0.5)


@dataclass
class EndpointReport:
    name: str
    base_url: str
    findings: list[Finding] = field(default_factory=list)
    capabilities: EndpointCapabilities | None = None

    def add(self, name: str, level: Level, reason: str) -> None:
        self.findings.append(Finding(name, level, reason))

    @property
    def failed(self) -> bool:
        return any(f.level == "fail" for f in self.findings)

    def to_dict(self) -> dict[str, object]:
        return {
            "endpoint": self.name,
            "base_url": self.base_url,
            "ok": not self.failed,
            "checks": [f.to_dict() for f in self.findings],
        }


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def probe_endpoint(
    name: str,
    base_url: str,
    *,
    auth: httpx.Auth | None = None,
    verify: bool = True,
    request_timeout: float = 10.0,
    poll_interval_seconds: float = 3600.0,
    transport: httpx.AsyncBaseTransport | None = None,
    headers: dict[str, str] | None = None,
) -> EndpointReport:
    """Probe one endpoint; never raises for what it finds (that is in the report). ``headers``
    are the endpoint's own (``Prefer: handling=strict`` ...), sent as the bridge would."""
    report = EndpointReport(name, base_url.rstrip("/"))
    common = {
        "name": name,
        "timeout": request_timeout,
        "verify": verify,
        "retry": PROBE_RETRY,
        "transport": transport,
        "headers": headers,
    }

    # 1. reachability and metadata, without credentials (/metadata is open by the spec)
    async with AsyncFhirClient(base_url, **common) as anonymous:  # type: ignore[arg-type]
        try:
            statement = await anonymous.capability_statement()
        except TransportError as exc:
            if _tls_failure(exc):
                report.add("reachable", "ok", "TCP connection made")
                report.add("tls", "fail", "TLS handshake failed: certificate not trusted or TLS refused")
            else:
                report.add("reachable", "fail", f"unreachable: {exc.message.rsplit(': ', 1)[-1]}")
            return report
        except FhirHttpError as exc:
            report.add("reachable", "ok", f"answered HTTP {exc.status}")
            _tls(report, base_url, verify)
            report.add("metadata", "fail", f"GET metadata answered {exc.status}: capabilities unknown")
            return report
        except InvalidResourceError:
            report.add("reachable", "ok", "answered")
            _tls(report, base_url, verify)
            report.add("metadata", "fail", "GET metadata did not answer with FHIR JSON")
            return report
        report.add("reachable", "ok", "answered GET metadata")
        _tls(report, base_url, verify)
        smart = await anonymous.smart_configuration()
        try:
            caps = EndpointCapabilities.from_documents(statement, smart)
        except InvalidResourceError as exc:
            report.add("metadata", "fail", exc.message)
            return report
        report.capabilities = caps
        software = f" ({caps.software})" if caps.software else ""
        report.add("metadata", "ok", f"CapabilityStatement{software}, {len(caps.resources)} resource types")

    # 2. credentials and one authorised read
    _auth_config(report, auth, caps, statement)
    async with AsyncFhirClient(base_url, auth=auth, **common) as client:  # type: ignore[arg-type]
        try:
            await client.search("Task", {"_summary": "count"})
        except FhirAuthError as exc:
            if exc.status == 403:
                report.add("access", "fail", "token accepted but refused for Task search (403): check scopes")
            else:
                why = "no credentials configured" if auth is None else "credentials refused"
                report.add("access", "fail", f"endpoint answered 401: {why}")
        except AuthError as exc:
            report.add("token", "fail", exc.message)
        except ExchangeError as exc:
            report.add("access", "warn", f"Task search failed: {exc.message}")
        else:
            if isinstance(auth, SmartBackendAuth):
                scope = f" (scope: {auth.granted_scope})" if auth.granted_scope else ""
                report.add("token", "ok", f"access token granted for client {auth.client_id!r}{scope}")
            how = "with credentials" if auth is not None else "without credentials"
            report.add("access", "ok", f"Task search answered {how}")
            caps = caps.learn("Task", "search-type", True, "probed: a Task count search answered")
            caps = await _probe_unlisted(client, caps)
    report.capabilities = caps
    report.findings += caps.findings(poll_interval_seconds=poll_interval_seconds)
    return report


PROBED_TYPES = ("DocumentReference", "Encounter", "Procedure", "Provenance", "ServiceRequest")
MISSING_ID = "bridge-check-no-such-id"


async def _probe_unlisted(client: AsyncFhirClient, caps: EndpointCapabilities) -> EndpointCapabilities:
    """Settle by reading what the statement leaves unknown: count searches (the server knows the
    type), a read of an id that does not exist (404: reads work), an empty transaction."""
    for rtype in PROBED_TYPES:
        if caps.support(rtype, "search-type") != "unknown":
            continue
        try:
            await client.search(rtype, {"_summary": "count"})
        except ExchangeError as exc:
            why = refusal(exc)
            if why is not None:
                caps = caps.learn(rtype, "search-type", False, f"probed: {why}")
        else:
            caps = caps.learn(rtype, "search-type", True, f"probed: {rtype}?_summary=count answered")
    if caps.support("ServiceRequest", "read") == "unknown":
        try:
            await client.read_raw(f"ServiceRequest/{MISSING_ID}")
        except FhirHttpError as exc:
            why = refusal(exc)
            if exc.status in (404, 410):
                caps = caps.learn(
                    "ServiceRequest", "read", True, "probed: a read answered 404 for a missing id"
                )
            elif why is not None:
                caps = caps.learn("ServiceRequest", "read", False, f"probed: {why}")
        except ExchangeError:
            pass
    if caps.support(TRANSACTION, "transaction") == "unknown":
        try:
            # one count search as a transaction: reads, writes nothing (an empty one is refused by
            # some servers as invalid, which would prove nothing)
            read_only = {"request": {"method": "GET", "url": "Task?_summary=count"}}
            await client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [read_only]})
        except ExchangeError as exc:
            why = refusal(exc)
            if why is not None:
                caps = caps.learn(TRANSACTION, "transaction", False, f"probed: {why}")
        else:
            caps = caps.learn(TRANSACTION, "transaction", True, "probed: a read-only transaction answered")
    return caps


def _tls(report: EndpointReport, base_url: str, verify: bool) -> None:
    if base_url.startswith("https://"):
        if verify:
            report.add("tls", "ok", "certificate verified")
        else:
            report.add("tls", "warn", "certificate NOT verified (verify_tls = false)")
    elif _is_loopback(base_url):
        report.add("tls", "ok", "plain HTTP on loopback")
    else:
        report.add("tls", "warn", "plain HTTP: traffic, including PHI, is not encrypted")


def _auth_config(
    report: EndpointReport, auth: httpx.Auth | None, caps: EndpointCapabilities, statement: dict[str, object]
) -> None:
    # what the CapabilityStatement declares (rest.security.service), not a smart-configuration
    # document some servers publish whether or not they enforce it
    advertises_smart = any(
        word in str(statement.get("rest", "")) for word in ("SMART-on-FHIR", "OAuth", "oauth-uris")
    )
    if auth is None:
        if advertises_smart:
            report.add("auth", "warn", "endpoint advertises SMART/OAuth but no auth is configured")
        else:
            report.add("auth", "ok", "no auth configured")
    elif isinstance(auth, BearerAuth):
        report.add("auth", "ok", "static bearer token from the environment")
    elif isinstance(auth, SmartBackendAuth):
        if caps.smart is None and auth.token_url is None:
            report.add(
                "auth", "fail", "SMART configured but the endpoint has no .well-known/smart-configuration"
            )
        elif caps.smart is not None and caps.smart.signing_algs and auth.alg not in caps.smart.signing_algs:
            algs = ", ".join(sorted(caps.smart.signing_algs))
            report.add("auth", "warn", f"{auth.alg} not among the advertised signing algorithms ({algs})")
        else:
            report.add("auth", "ok", f"SMART Backend Services, {auth.alg}, kid {auth.kid}")


async def probe_configured(name: str, endpoint: EndpointSettings, base_dir: Path | None) -> EndpointReport:
    """Probe one ``[endpoints.<name>]``; a bad key or missing secret is a ``config`` fail line."""
    try:
        auth = auth_from_settings(name, endpoint, base_dir=base_dir)
    except ConfigError as exc:
        report = EndpointReport(name, endpoint.base_url)
        report.add("config", "fail", f"{exc.path}: {exc.reason}")
        return report
    report = await probe_endpoint(
        name,
        endpoint.base_url,
        auth=auth,
        verify=endpoint.verify_tls,
        request_timeout=min(endpoint.timeout_seconds, 15.0),
        poll_interval_seconds=endpoint.poll_interval_seconds,
        headers=dict(endpoint.headers),
    )
    report.findings.insert(0, Finding("config", "ok", f"[endpoints.{name}] valid"))
    return report


async def probe_settings(settings: Settings) -> list[EndpointReport]:
    """Probe every configured endpoint, concurrently."""
    base_dir = Path(settings.base_dir)
    return list(
        await asyncio.gather(*(probe_configured(n, e, base_dir) for n, e in settings.endpoints.items()))
    )
