"""A small loopback HTTP proxy that injects faults in front of the sandbox EHR (test code only).

Each incoming request takes the first planned :class:`Fault` whose ``match`` accepts it; requests no
fault wants are forwarded untouched. Kinds:

- ``status``: answer ``status`` with ``headers`` (e.g. 429 + Retry-After) without reaching the EHR;
- ``reset``: close the connection with a TCP reset before anything reaches the EHR;
- ``slow``: wait ``delay`` seconds, then forward (the client may have timed out and retried by then);
- ``lost``: forward (the EHR commits), then reset the connection instead of answering.

``rewrite`` hooks change forwarded JSON answers (e.g. a CapabilityStatement without Encounter create).
The upstream's own URL in answers is replaced by the proxy's, so links and Locations stay on it
(``rewrite_urls=False`` keeps them, e.g. so a SMART token endpoint is reached directly).
Traffic stays on 127.0.0.1 and every waiting task is cancelled on ``close()``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Match = Callable[[str, str], bool]


def any_request(method: str, path: str) -> bool:
    return True


def on(method: str | None = None, path_contains: str | None = None) -> Match:
    def match(m: str, p: str) -> bool:
        return (method is None or m == method) and (path_contains is None or path_contains in p)

    return match


@dataclass
class Fault:
    kind: Literal["status", "reset", "slow", "lost"]
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    match: Match = any_request

    @classmethod
    def answer(cls, status: int, match: Match = any_request, **headers: str) -> Fault:
        return cls(
            "status", status=status, headers={k.replace("_", "-"): v for k, v in headers.items()}, match=match
        )


@dataclass
class Seen:
    method: str
    path: str
    fault: str  # "forwarded" or the fault kind
    authorization: str | None = None


class FaultProxy:
    def __init__(self, upstream_root: str, *, rewrite_urls: bool = True) -> None:
        self.upstream_root = upstream_root.rstrip("/")
        self.rewrite_urls = rewrite_urls
        self.faults: list[Fault] = []
        self.rewrites: list[tuple[Match, Callable[[dict[str, Any]], dict[str, Any]]]] = []
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._upstream = httpx.AsyncClient(timeout=30.0)
        self.port = 0

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/fhir"

    def plan(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def rewrite(self, match: Match, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.rewrites.append((match, fn))

    def count(self, method: str | None = None, path_contains: str = "") -> int:
        return sum(1 for s in self.seen if (method is None or s.method == method) and path_contains in s.path)

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        await self._upstream.aclose()

    def _take(self, method: str, path: str) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.match(method, path):
                return self.faults.pop(i)
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: list[tuple[str, str]] = []
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers.append((k.strip(), v.strip()))
                length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                if not await self._one(method, target, headers, body, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Handle one request; False when the connection is gone."""
        path = target.split("?")[0]
        fault = self._take(method, path)
        auth = next((v for k, v in headers if k.lower() == "authorization"), None)
        self.seen.append(Seen(method, path, fault.kind if fault else "forwarded", auth))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault is not None and fault.kind == "reset":
                _reset(writer)
                return False
            if fault is not None and fault.kind == "status":
                outcome = {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "error", "code": "throttled" if fault.status == 429 else "transient"}
                    ],
                }
                await _write(writer, fault.status, fault.headers, json.dumps(outcome).encode())
                return True
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            status, out_headers, out_body = await self._forward(method, target, headers, body)
            if fault is not None and fault.kind == "lost":
                _reset(writer)  # the EHR committed; the answer never arrives
                return False
            await _write(writer, status, out_headers, out_body)
            return True
        finally:
            self.in_flight -= 1

    async def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        skip = {"host", "content-length", "connection", "accept-encoding"}
        send = [
            (k, v.replace(self.root_url, self.upstream_root)) for k, v in headers if k.lower() not in skip
        ]
        resp = await self._upstream.request(method, self.upstream_root + target, headers=send, content=body)
        content = resp.content
        if self.rewrite_urls:
            content = content.replace(self.upstream_root.encode(), self.root_url.encode())
        for match, fn in self.rewrites:
            if match(method, target.split("?")[0]) and content:
                content = json.dumps(fn(json.loads(content))).encode()
        keep = ("content-type", "location", "content-location", "etag", "last-modified", "www-authenticate")
        out = {
            k: v.replace(self.upstream_root, self.root_url)
            for k, v in resp.headers.items()
            if k.lower() in keep
        }
        return resp.status_code, out, content


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # linger 0: close() sends RST instead of FIN, as a crashed middlebox would
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _write(writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes) -> None:
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if "content-type" not in {k.lower() for k in headers}:
        lines.append("Content-Type: application/fhir+json")
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
