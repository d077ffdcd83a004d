"""A loopback reverse proxy in front of the sandbox EHR that can stop answering (a hung EHR)."""

from __future__ import annotations

import asyncio

import httpx
from aiohttp import web


class FreezableEhr:
    """A loopback reverse proxy to the sandbox EHR; ``freeze()`` makes it stop answering (the
    connection stays open, no status line ever comes), ``thaw()`` lets requests through again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.frozen = asyncio.Event()
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.hung = 0
        self._http = httpx.AsyncClient(timeout=30)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.frozen.is_set():
            self.hung += 1
            await self.thawed.wait()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        resp = await self._http.request(
            request.method, f"{self.upstream}{request.path_qs}", content=body, headers=headers
        )
        text = resp.content.replace(self.upstream.encode(), f"http://127.0.0.1:{self.port}".encode())
        keep = {k: v for k, v in resp.headers.items() if k.lower() in ("content-type", "location", "etag")}
        return web.Response(status=resp.status_code, body=text, headers=keep)

    def freeze(self) -> None:
        self.thawed.clear()
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()
        self.thawed.set()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{self.port}/fhir"

    async def close(self) -> None:
        self.thaw()
        if self._runner is not None:
            await self._runner.cleanup()
        await self._http.aclose()
