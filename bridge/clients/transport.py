"""The HTTP transport under every ``AsyncFhirClient``: aiohttp's connection pool behind httpx's API.

httpx's own pool slows down as connections are added (encode/httpx#3215: in ``bench/client.py``
raw httpx with 32 connections ran at a fraction of its 8-connection rate, while aiohttp did not),
so the client keeps httpx's API (auth flows, event hooks, ``MockTransport`` in unit tests) and
sends through ``httpx_aiohttp.AiohttpTransport``.

Two corrections on top. That package maps every ``aiohttp.ClientConnectionError`` to
``httpx.ConnectTimeout``, including a server that closed the connection after the request went
out. The retry policy reads ``ConnectError``/``ConnectTimeout`` as "never reached the server" and
resends even a plain create on it (:func:`bridge.clients.status.never_sent`), so that mapping
could duplicate a resource. Here only failures to connect are connect errors; a dropped
connection, a reset or a cut body is a read/protocol error (maybe sent), both for the request and
while the body is read. And aiohttp's own resend of idempotent methods is off (see
:class:`BridgeTransport`).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def _translate(exc: BaseException) -> httpx.TransportError | None:
    """The httpx error for an aiohttp one (the original, not the package's mapping); None if not ours."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout("connect timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake: nothing sent
        return httpx.ConnectError(type(exc).__name__)
    if isinstance(exc, aiohttp.ServerTimeoutError):  # the answer did not come in time
        return httpx.ReadTimeout("read timed out")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError("server disconnected")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
        return httpx.ReadError(type(exc).__name__)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.RemoteProtocolError(type(exc).__name__)
    return None


def _retranslated(exc: Exception) -> Exception:
    original = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ else exc
    translated = _translate(original)
    return translated if translated is not None else exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            raise _retranslated(exc) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class BridgeTransport(AiohttpTransport):
    """``AiohttpTransport`` with failures mapped by what they mean for a resend (see above), and
    without aiohttp's own silent resend of an idempotent method (PUT, GET ...) once on a kept-alive
    connection the server dropped: the retry policy decides every resend and counts it, which a
    versioned update needs to recognise its own committed first attempt behind a 412
    (``tests/clients/test_client_faults.py``, "lost" answers)."""

    def get_client(self) -> aiohttp.ClientSession:
        limit = self.limits.max_connections
        connector = aiohttp.TCPConnector(
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
            limit=limit if limit is not None else 100,
        )
        # trust_env: HTTP(S)_PROXY and NO_PROXY from the environment, as httpx's own transport
        # honours them (the library's session ignores them: a bridge behind an outbound proxy
        # would have lost it)
        session = aiohttp.ClientSession(connector=connector, trust_env=True)
        if hasattr(session, "_retry_connection"):  # aiohttp >= 3.10 has no public switch for it
            session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            raise _retranslated(exc) from exc
        response.stream = _Body(response.stream)  # type: ignore[arg-type]
        return response


def default_transport(*, verify: bool | ssl.SSLContext, max_connections: int) -> httpx.AsyncBaseTransport:
    """The transport for one endpoint: ``max_connections`` kept-alive connections at most."""
    return BridgeTransport(
        verify=verify,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
    )
