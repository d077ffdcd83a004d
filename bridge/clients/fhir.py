"""``AsyncFhirClient``: one FHIR R4 REST endpoint over one long-lived ``httpx.AsyncClient``.

Interactions (https://hl7.org/fhir/R4/http.html): read, vread, search with paging, create,
conditional create (``If-None-Exist``), update (``If-Match``), transaction/batch, capabilities.
Resources come back as ``fhir.resources.R4B`` models; one the models reject is an
:class:`~bridge.errors.InvalidResourceError` for a read, and is listed in ``SearchPage.invalid``
(not crashed on) in a search.

Every request goes through: circuit breaker -> optional rate limit -> concurrency slot -> httpx
(auth inside) -> status mapping; the whole of that is retried by :class:`RetryPolicy` when the
request is idempotent. See ``bridge/clients/__init__.py`` for the public API.

Longer than the rest (~730 lines) on purpose: it is one class over one endpoint, and every
interaction shares the request pipeline above (breaker, slots, retries, status mapping); auth,
limits, retry policy, capabilities and status mapping already live in modules of their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from bridge.clients.auth import SmartBackendAuth, auth_from_settings
from bridge.clients.capabilities import EndpointCapabilities
from bridge.clients.limits import BreakerStatus, CircuitBreaker, RateLimiter
from bridge.clients.retry import RetryPolicy
from bridge.clients.status import error_for_response, error_for_transport
from bridge.clients.transport import default_transport
from bridge.config import EndpointSettings
from bridge.errors import (
    BridgeError,
    FhirHttpError,
    FhirRequestError,
    InvalidResourceError,
    PermanentError,
    RetryableError,
)

FHIR_JSON = "application/fhir+json"
SearchParams = Mapping[str, str | int | Sequence[str]] | Sequence[tuple[str, str]]
ResourceInput = Resource | Mapping[str, Any]


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvalidEntry:
    """A resource the R4 models rejected: where it was, its type and id, and the first problem."""

    resource_type: str | None
    id: str | None
    reason: str


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: ``matches`` apart from ``included`` (``_include``/``_revinclude``)."""

    matches: list[Resource]
    included: list[Resource]
    invalid: list[InvalidEntry]
    total: int | None
    next_url: str | None
    raw_outcomes: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RawPage:
    """One page of a search as the server sent it (plain JSON, no model round trip): for callers
    that reduce what they read, where validating would cost time and could reshape it."""

    matches: list[dict[str, Any]]
    included: list[dict[str, Any]]
    next_url: str | None
    total: int | None = None  # Bundle.total, when the server gave it


@dataclass(frozen=True)
class WriteResult:
    """The answer to a create or update. ``created`` is False when a conditional create matched.

    ``resource`` (the server's copy as an R4B model) is parsed on first access: the outbound path
    needs only id and version, and validating every answer would double the client's CPU per write.
    A copy the models reject raises InvalidResourceError there; ``raw`` is the JSON as sent back.
    """

    status: int
    resource_type: str
    id: str | None
    version_id: str | None
    location: str | None
    created: bool
    raw: dict[str, Any] | None = None

    @cached_property
    def resource(self) -> Resource | None:
        return parse_resource(self.raw) if self.raw is not None else None


@dataclass(frozen=True)
class EntryResult:
    """One entry of a transaction/batch response (``Bundle.entry.response``)."""

    status: int
    location: str | None
    etag: str | None
    resource_type: str | None
    id: str | None
    version_id: str | None
    outcome: dict[str, Any] | None


@dataclass(frozen=True)
class BundleResult:
    status: int
    entries: list[EntryResult]
    bundle: dict[str, Any]


@dataclass(frozen=True)
class ClientStatus:
    """Observable state of one endpoint's client (for health pages and ``bridge check``)."""

    endpoint: str | None
    base_url: str
    breaker: BreakerStatus
    in_flight: int
    requests: int
    retries: int


# --- parsing -------------------------------------------------------------------------------------


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(resource)"
    # the message names the field and the rule broken, not the value (which could be PHI)
    return f"{where}: {first['type']}"


def parse_resource(data: Mapping[str, Any]) -> Resource:
    """An R4B model for a resource dict; InvalidResourceError (naming type, id, field) if rejected."""
    rtype = data.get("resourceType")
    rid = data.get("id")
    try:
        model_cls = get_fhir_model_class(str(rtype))
    except (ValueError, KeyError):
        raise InvalidResourceError(f"unknown resourceType {rtype!r} (id {rid!r})") from None
    try:
        model = cast(Resource, model_cls.model_validate(data))
    except ValidationError as exc:
        raise InvalidResourceError(
            f"{rtype}/{rid} rejected by the R4 models: {_validation_reason(exc)}"
        ) from None
    return model


def _json_of(resource: ResourceInput) -> bytes:
    if isinstance(resource, Resource):
        return resource.model_dump_json().encode()
    return json.dumps(resource, separators=(",", ":")).encode()


def _type_of(resource: ResourceInput) -> str:
    rtype = resource.get_resource_type() if isinstance(resource, Resource) else resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise InvalidResourceError("resource has no resourceType")
    return rtype


def _id_of(resource: ResourceInput) -> str | None:
    rid = resource.id if isinstance(resource, Resource) else resource.get("id")
    return str(rid) if rid else None


def _query(query: SearchParams | str) -> str:
    if isinstance(query, str):
        return query.lstrip("?")
    return urlencode(_pairs(query))


def _pairs(params: SearchParams | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in params.items():
            if isinstance(value, str | int):
                pairs.append((key, str(value)))
            else:
                pairs += [(key, str(v)) for v in value]
        return pairs
    return [(str(k), str(v)) for k, v in params]


def _version_from_etag(etag: str | None) -> str | None:
    if not etag:
        return None
    return etag.removeprefix("W/").strip('"') or None


def _meta_version(resource: Mapping[str, Any] | None) -> str | None:
    meta = (resource or {}).get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return str(version) if version else None


def _id_from_location(location: str | None) -> tuple[str | None, str | None, str | None]:
    """(type, id, version) from ``.../Type/id/_history/v`` (absolute or relative)."""
    if not location:
        return None, None, None
    parts = location.split("?")[0].rstrip("/").split("/")
    if "_history" in parts:
        i = parts.index("_history")
        if i >= 2:
            return parts[i - 2], parts[i - 1], parts[i + 1] if i + 1 < len(parts) else None
    if len(parts) >= 2:
        return parts[-2], parts[-1], None
    return None, None, None


def _content(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A resource without the parts a server sets on write (meta, text), for comparing copies."""
    return {k: v for k, v in resource.items() if k not in ("meta", "text")}


def is_idempotent_bundle(bundle: Mapping[str, Any]) -> bool:
    """True when every entry is safe to resend: GET, conditional create, If-Match / conditional update."""
    for entry in bundle.get("entry", []):
        req = entry.get("request") or {}
        method = str(req.get("method", "")).upper()
        url = str(req.get("url", ""))
        if method in ("GET", "HEAD"):
            continue
        if method == "POST" and req.get("ifNoneExist"):
            continue
        if method == "PUT" and (req.get("ifMatch") or "?" in url):
            continue
        return False
    return True


def _entries(bundle: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(search mode, resource) of each entry that carries a resource; mode defaults to match."""
    for entry in bundle.get("entry") or []:
        data = entry.get("resource")
        if isinstance(data, dict):
            yield (entry.get("search") or {}).get("mode", "match"), data


# --- the client ----------------------------------------------------------------------------------


class AsyncFhirClient:
    """One FHIR R4 endpoint. Use ``async with`` (or ``aclose()``) so the connection pool is closed."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str | None = None,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        max_concurrency: int = 8,
        rate_limit_per_second: float | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        verify: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker(endpoint=name)
        self._limiter = RateLimiter(rate_limit_per_second) if rate_limit_per_second else None
        self._slots = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self._in_flight = 0
        self.requests = 0
        self.retries = 0
        self.last_success: float | None = None  # time.time() of the last 2xx answer
        self._failure_observers: list[Callable[[float, str], None]] = []
        self._capabilities: EndpointCapabilities | None = None
        # what the server showed at run time: (type, interaction) -> (works, why); kept across
        # refreshes of the statement
        self._learned: dict[tuple[str, str], tuple[bool, str]] = {}
        self._http = httpx.AsyncClient(
            auth=auth,
            timeout=timeout,
            verify=verify,
            # aiohttp's pool under httpx's API (bridge/clients/transport.py: httpx's own pool slows
            # down at 32 connections); the limits and TLS settings go to the transport
            transport=transport or default_transport(verify=verify, max_connections=max_concurrency + 2),
            headers={"Accept": FHIR_JSON, **(headers or {})},
            follow_redirects=False,
        )

    @classmethod
    def from_settings(
        cls,
        name: str,
        endpoint: EndpointSettings,
        *,
        base_dir: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_max_seconds: float | None = None,
    ) -> AsyncFhirClient:
        """The client for ``[endpoints.<name>]``: auth, timeouts, concurrency, rate, retry, breaker.
        ``retry_max_seconds`` caps the endpoint's in-call retry budget (the outbox passes a share
        of its lease)."""
        budget = endpoint.retry_max_seconds
        if retry_max_seconds is not None:
            budget = min(budget, retry_max_seconds)
        return cls(
            endpoint.base_url,
            name=name,
            auth=auth_from_settings(name, endpoint, base_dir=base_dir),
            timeout=endpoint.timeout_seconds,
            max_concurrency=endpoint.max_concurrency,
            rate_limit_per_second=endpoint.rate_limit_per_second,
            retry=RetryPolicy(max_seconds=budget),
            breaker=CircuitBreaker(
                failures=endpoint.breaker_failures,
                reset_seconds=endpoint.breaker_reset_seconds,
                endpoint=name,
            ),
            verify=endpoint.verify_tls,
            transport=transport,
            headers=endpoint.headers,
        )

    async def __aenter__(self) -> AsyncFhirClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def observe(
        self,
        on_response: Callable[[float, int], None],
        on_failure: Callable[[float, str], None] | None = None,
    ) -> None:
        """Call ``on_response(seconds, status_code)`` after every HTTP exchange this client makes
        (retries and token requests excluded: one call per response from the endpoint), and
        ``on_failure(seconds, "timeout" | "error")`` for each request that got no answer."""
        if on_failure is not None:
            self._failure_observers.append(on_failure)

        async def started(request: httpx.Request) -> None:
            request.extensions["bridge_started"] = time.perf_counter()

        async def finished(response: httpx.Response) -> None:
            began = response.request.extensions.get("bridge_started")
            if isinstance(began, float):
                on_response(time.perf_counter() - began, response.status_code)

        self._http.event_hooks["request"].append(started)
        self._http.event_hooks["response"].append(finished)

    def status(self) -> ClientStatus:
        return ClientStatus(
            self.name, self.base_url, self.breaker.status(), self._in_flight, self.requests, self.retries
        )

    # --- the request pipeline --------------------------------------------------------------------

    async def _attempt(
        self, method: str, url: str, *, content: bytes | None, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        self.breaker.before_call()
        try:
            return await self._attempt_admitted(method, url, content=content, headers=headers)
        except asyncio.CancelledError:
            # a cancelled half-open trial must not hold the trial slot forever
            self.breaker.release_trial()
            raise

    async def _attempt_admitted(
        self, method: str, url: str, *, content: bytes | None, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        if self._limiter is not None:
            await self._limiter.acquire()
        async with self._slots:
            self._in_flight += 1
            self.requests += 1
            request = self._http.build_request(method, url, content=content, headers=headers)
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                self.breaker.record_failure()  # time-outs too: a hung EHR opens the breaker
                self._no_answer(request, exc)
                raise error_for_transport(exc, request, endpoint=self.name) from exc
            except RetryableError:  # from the auth flow (token endpoint busy)
                self.breaker.record_failure()
                raise
            except BridgeError:  # auth refused: the server is healthy, we are not welcome
                self.breaker.record_success()
                raise
            finally:
                self._in_flight -= 1
        if response.is_success:
            self.breaker.record_success()
            self.last_success = time.time()
            return response
        err = error_for_response(response, endpoint=self.name, now=datetime.now(UTC))
        if isinstance(err, RetryableError):
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        raise err

    def _no_answer(self, request: httpx.Request, exc: httpx.HTTPError) -> None:
        began = request.extensions.get("bridge_started")
        seconds = time.perf_counter() - began if isinstance(began, float) else 0.0
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "error"
        for observer in self._failure_observers:
            observer(seconds, kind)

    async def request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> httpx.Response:
        """Send one request (``path`` relative to the base URL, or absolute inside it), with retries."""
        return await self._send(method, path, content=content, headers=headers, idempotent=idempotent)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        tries: list[int] | None = None,
    ) -> httpx.Response:
        """``request``, counting attempts into ``tries[0]`` so callers can tell a retried call."""
        url = self._url(path)
        attempts = 0
        async for attempt in self.retry.retrying(idempotent=idempotent):
            with attempt:
                attempts += 1
                if tries is not None:
                    tries[0] = attempts
                if attempts > 1:
                    self.retries += 1
                return await self._attempt(method, url, content=content, headers=headers)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            if not self._inside_base(path):
                raise PermanentError(
                    f"{self.name or self.base_url}: refusing to follow a link outside the base URL",
                    endpoint=self.name,
                )
            return path
        return f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url

    def _inside_base(self, url: str) -> bool:
        return url == self.base_url or url.startswith((self.base_url + "/", self.base_url + "?"))

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise InvalidResourceError(
                f"{self.name or self.base_url}: {response.request.method} {response.request.url.path} "
                f"answered {response.status_code} with a body that is not JSON",
                endpoint=self.name,
            ) from None
        if not isinstance(body, dict):
            raise InvalidResourceError(f"{self.name or self.base_url}: answer is not a JSON object")
        return body

    # --- read ------------------------------------------------------------------------------------

    async def read(self, resource_type: str, resource_id: str) -> Resource:
        response = await self.request("GET", f"{resource_type}/{resource_id}", idempotent=True)
        return parse_resource(self._body(response))

    async def vread(self, resource_type: str, resource_id: str, version_id: str) -> Resource:
        response = await self.request(
            "GET", f"{resource_type}/{resource_id}/_history/{version_id}", idempotent=True
        )
        return parse_resource(self._body(response))

    async def read_raw(self, path: str) -> dict[str, Any]:
        """GET any path under the base URL and return the JSON body unparsed (metadata, operations)."""
        return self._body(await self.request("GET", path, idempotent=True))

    # --- search ----------------------------------------------------------------------------------

    async def search(self, resource_type: str, params: SearchParams | None = None) -> SearchPage:
        """The first page of ``GET [base]/[type]?params``. Follow with ``next_page`` or use ``pages``."""
        query = _query(params or [])
        return await self._page(f"{resource_type}?{query}" if query else resource_type)

    async def next_page(self, page: SearchPage) -> SearchPage | None:
        if page.next_url is None:
            return None
        return await self._page(page.next_url)

    async def pages(
        self, resource_type: str, params: SearchParams | None = None, *, max_pages: int | None = None
    ) -> AsyncIterator[SearchPage]:
        """Every page of a search, following ``next`` links (only inside the base URL)."""
        page: SearchPage | None = await self.search(resource_type, params)
        seen = 0
        while page is not None:
            yield page
            seen += 1
            if max_pages is not None and seen >= max_pages:
                return
            page = await self.next_page(page)

    async def search_all(self, resource_type: str, params: SearchParams | None = None) -> SearchPage:
        """All pages merged into one (matches, included, invalid); ``next_url`` is None."""
        matches: list[Resource] = []
        included: list[Resource] = []
        invalid: list[InvalidEntry] = []
        outcomes: list[dict[str, Any]] = []
        total: int | None = None
        async for page in self.pages(resource_type, params):
            matches += page.matches
            included += page.included
            invalid += page.invalid
            outcomes += page.raw_outcomes
            total = page.total if page.total is not None else total
        return SearchPage(matches, included, invalid, total, None, outcomes)

    async def pages_raw(
        self, resource_type: str, params: SearchParams | None = None
    ) -> AsyncIterator[RawPage]:
        """Every page of a search as plain JSON (:class:`RawPage`): matches of ``resource_type``
        apart from included resources, following ``next`` links (only inside the base URL)."""
        query = _query(params or [])
        path: str | None = f"{resource_type}?{query}" if query else resource_type
        while path is not None:
            bundle, path = await self._bundle_page(path)
            matches: list[dict[str, Any]] = []
            included: list[dict[str, Any]] = []
            for mode, data in _entries(bundle):
                if mode == "include":
                    included.append(data)
                elif mode == "match" and data.get("resourceType") == resource_type:
                    matches.append(data)
            total = bundle.get("total")
            yield RawPage(matches, included, path, total if isinstance(total, int) else None)

    async def _bundle_page(self, path: str) -> tuple[dict[str, Any], str | None]:
        """One search answer and its ``next`` link (refused when it leaves the base URL)."""
        bundle = self._body(await self.request("GET", path, idempotent=True))
        if bundle.get("resourceType") != "Bundle":
            raise InvalidResourceError(f"{self.name or self.base_url}: search answer is not a Bundle")
        next_url = next(
            (lk.get("url") for lk in bundle.get("link") or [] if lk.get("relation") == "next"), None
        )
        if next_url is not None and not self._inside_base(str(next_url)):
            # a next link elsewhere could leak our token to another host: refuse, loudly
            raise PermanentError(
                f"{self.name or self.base_url}: search 'next' link points outside the base URL",
                endpoint=self.name,
            )
        return bundle, None if next_url is None else str(next_url)

    async def _page(self, path: str) -> SearchPage:
        bundle, next_url = await self._bundle_page(path)
        matches: list[Resource] = []
        included: list[Resource] = []
        invalid: list[InvalidEntry] = []
        outcomes: list[dict[str, Any]] = []
        for mode, data in _entries(bundle):
            if mode == "outcome":
                outcomes.append(data)
                continue
            try:
                model = parse_resource(data)
            except InvalidResourceError as exc:
                invalid.append(InvalidEntry(data.get("resourceType"), data.get("id"), exc.message))
                continue
            (included if mode == "include" else matches).append(model)
        total = bundle.get("total")
        return SearchPage(
            matches, included, invalid, total if isinstance(total, int) else None, next_url, outcomes
        )

    # --- write -----------------------------------------------------------------------------------

    async def create(self, resource: ResourceInput) -> WriteResult:
        """Plain create. Not retried once it may have reached the server (a resend could duplicate)."""
        rtype = _type_of(resource)
        response = await self.request(
            "POST", rtype, content=_json_of(resource), headers={"Content-Type": FHIR_JSON}, idempotent=False
        )
        return self._write_result(response, rtype, created=True)

    async def create_if_none_exist(self, resource: ResourceInput, query: SearchParams | str) -> WriteResult:
        """Conditional create (``If-None-Exist``): 201 created, 200 already there; retried safely.

        Several matches is a 412 :class:`~bridge.errors.FhirRequestError`.
        """
        rtype = _type_of(resource)
        response = await self.request(
            "POST",
            rtype,
            content=_json_of(resource),
            headers={"Content-Type": FHIR_JSON, "If-None-Exist": _query(query)},
            idempotent=True,
        )
        return self._write_result(response, rtype, created=response.status_code == 201)

    async def update(self, resource: ResourceInput, *, if_match: str | None = None) -> WriteResult:
        """PUT ``[type]/[id]``. With ``if_match`` (a version id or ETag) it is versioned and retried;
        a version conflict is a 412 :class:`~bridge.errors.FhirRequestError`.

        A retried versioned update can meet its own earlier attempt: the first one committed, its
        answer was lost, and the resend finds the version moved on (412). Then the current copy is
        read: if it is what we sent, the update landed and that is the answer; otherwise the 412
        stands (someone else changed it).
        """
        rtype = _type_of(resource)
        rid = _id_of(resource)
        if rid is None:
            raise InvalidResourceError(f"{rtype}: update needs the resource id")
        headers = {"Content-Type": FHIR_JSON}
        if if_match is not None:
            headers["If-Match"] = if_match if if_match.startswith("W/") else f'W/"{if_match}"'
        body = _json_of(resource)
        tries = [0]
        try:
            response = await self._send(
                "PUT",
                f"{rtype}/{rid}",
                content=body,
                headers=headers,
                idempotent=if_match is not None,
                tries=tries,
            )
        except FhirRequestError as exc:
            if exc.status in (409, 412) and if_match is not None and tries[0] > 1:
                landed = await self._own_update_landed(rtype, rid, body)
                if landed is not None:
                    return landed
            raise
        return self._write_result(response, rtype, created=response.status_code == 201)

    async def update_conditional(self, resource: ResourceInput, query: SearchParams | str) -> WriteResult:
        """Conditional update ``PUT [type]?query``: updates the one match, creates when none
        (several: 412). Idempotent, so retried."""
        rtype = _type_of(resource)
        response = await self.request(
            "PUT",
            f"{rtype}?{_query(query)}",
            content=_json_of(resource),
            headers={"Content-Type": FHIR_JSON},
            idempotent=True,
        )
        return self._write_result(response, rtype, created=response.status_code == 201)

    async def _own_update_landed(self, rtype: str, rid: str, sent: bytes) -> WriteResult | None:
        current = await self.read_raw(f"{rtype}/{rid}")
        if _content(current) != _content(json.loads(sent)):
            return None
        meta = current.get("meta") if isinstance(current.get("meta"), dict) else {}
        version = meta.get("versionId") if meta else None
        return WriteResult(200, rtype, rid, str(version) if version else None, None, False, current)

    def _write_result(self, response: httpx.Response, rtype: str, *, created: bool) -> WriteResult:
        location = response.headers.get("location") or response.headers.get("content-location")
        ltype, lid, lversion = _id_from_location(location)
        raw: dict[str, Any] | None = None
        if response.content:
            body = self._body(response)
            if body.get("resourceType") == rtype:
                raw = body
        body_id = raw.get("id") if raw is not None else None
        rid = (str(body_id) if body_id else None) or lid
        version = _version_from_etag(response.headers.get("etag")) or lversion
        if version is None and raw is not None and isinstance(raw.get("meta"), dict):
            meta_version = raw["meta"].get("versionId")
            version = str(meta_version) if meta_version else None
        return WriteResult(response.status_code, ltype or rtype, rid, version, location, created, raw)

    # --- bundles ---------------------------------------------------------------------------------

    async def transaction(self, bundle: Mapping[str, Any]) -> BundleResult:
        """POST a ``transaction`` Bundle; retried only when every entry is conditional (idempotent)."""
        return await self._bundle(bundle, "transaction")

    async def batch(self, bundle: Mapping[str, Any]) -> BundleResult:
        """POST a ``batch`` Bundle; each entry succeeds or fails on its own (see ``EntryResult.status``)."""
        return await self._bundle(bundle, "batch")

    async def _bundle(self, bundle: Mapping[str, Any], kind: str) -> BundleResult:
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != kind:
            raise InvalidResourceError(f"{kind}: expected a Bundle of type {kind!r}")
        response = await self.request(
            "POST",
            "",
            content=_json_of(bundle),
            headers={"Content-Type": FHIR_JSON},
            idempotent=is_idempotent_bundle(bundle),
        )
        body = self._body(response)
        entries = []
        for entry in body.get("entry", []):
            answer = entry.get("response") or {}
            status_text = str(answer.get("status", "0")).split(" ")[0]
            location = answer.get("location")
            ltype, lid, lversion = _id_from_location(location)
            resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
            outcome = answer.get("outcome") if isinstance(answer.get("outcome"), dict) else None
            entries.append(
                EntryResult(
                    status=int(status_text) if status_text.isdigit() else 0,
                    location=location,
                    etag=answer.get("etag"),
                    resource_type=ltype or (resource or {}).get("resourceType"),
                    id=lid or (resource or {}).get("id"),
                    # some servers give the version only in the resource they return
                    version_id=_version_from_etag(answer.get("etag")) or lversion or _meta_version(resource),
                    outcome=outcome,
                )
            )
        return BundleResult(response.status_code, entries, body)

    # --- capabilities ----------------------------------------------------------------------------

    async def capability_statement(self) -> dict[str, Any]:
        return await self.read_raw("metadata")

    async def smart_configuration(self) -> dict[str, Any] | None:
        """``.well-known/smart-configuration``, or None when the endpoint has none (404 and the like)."""
        try:
            return await self.read_raw(".well-known/smart-configuration")
        except (FhirHttpError, InvalidResourceError) as exc:
            if isinstance(exc, FhirHttpError) and exc.status in (401, 403, 404, 405, 406, 410):
                return None
            if isinstance(exc, InvalidResourceError):
                return None
            raise

    async def capabilities(self, *, refresh: bool = False) -> EndpointCapabilities:
        """What this endpoint supports (the statement cached after the first call), with what was
        learned since (:meth:`learn`)."""
        if self._capabilities is None or refresh:
            statement = await self.capability_statement()
            smart = await self.smart_configuration()
            self._capabilities = EndpointCapabilities.from_documents(statement, smart)
        caps = self._capabilities
        for (rtype, interaction), (works, why) in self._learned.items():
            caps = caps.learn(rtype, interaction, works, why)
        return caps

    def learn(self, resource_type: str, interaction: str, works: bool, why: str) -> None:
        """Remember that ``interaction`` on ``resource_type`` works here (or is refused, and why)."""
        self._learned[(resource_type, interaction)] = (works, why)

    @property
    def tokens_fetched(self) -> int:
        return self.auth.tokens_fetched if isinstance(self.auth, SmartBackendAuth) else 0
