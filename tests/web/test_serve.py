"""``bridge serve`` as a real process: answers, logs JSON, and shuts down gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from bridge.store import open_store
from bridge_dev.sandbox import Sandbox, free_port
from tests.web.stack import Stack, encounter_for, write_stack


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> bool:
    """Wait for an asynchronous outcome; the test asserts the outcome, never the time it took."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return await check()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"bridge serve exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"bridge serve never became ready:\n{log.read_text()[-3000:]}")


def _start(stack: Stack, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **stack.env}
    bridge = str(Path(sys.executable).with_name("bridge"))
    with open(log, "wb") as out:
        return subprocess.Popen(
            [bridge, "serve", "--config", str(stack.config), "--directory", str(stack.directory)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


async def test_serve_delivers_and_stops_gracefully(sandbox_ehr: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    stack = write_stack(sandbox_ehr, tmp_path, port=port)
    log = tmp_path / "serve.log"
    proc = _start(stack, log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        peer = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            first = await api.post("/api/v1/encounters", json=encounter_for(stack, 0), headers=peer)
            assert first.status_code == 202, first.text
            # a second one in flight when the signal comes: it must end delivered or queued, not leased
            second = await api.post("/api/v1/encounters", json=encounter_for(stack, 1), headers=peer)
            assert second.status_code == 202, second.text
            status_url = first.json()["status_url"]

            async def delivered() -> bool:
                return (await api.get(status_url, headers=peer)).json()["state"] == "delivered"

            assert await eventually(delivered)
            metrics = (await api.get("/metrics")).text
            assert 'bridge_outbox_items{endpoint="clinic",state="delivered"}' in metrics
            assert 'bridge_delivery_seconds_count{endpoint="clinic",outcome="ok"}' in metrics
            assert 'bridge_outbox_retries{endpoint="clinic"}' in metrics
            health = (await api.get("/health")).json()
            assert health["checks"]["store"]["ok"] and health["checks"]["endpoint:clinic"]["ok"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    events = [r.get("event") for r in lines]
    assert events.index("started") < events.index("stopping") < events.index("stopped")
    assert any(r.get("route") == "/api/v1/encounters" and r.get("request_id") for r in lines)

    store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")
    try:
        items = await store.outbox.list(limit=10)
        assert len(items) == 2
        for item in items:
            assert item.state.value in ("delivered", "queued"), item.state
            if item.state.value == "queued":
                assert item.lease_owner is None  # released, so another instance can take it
    finally:
        await store.close()
