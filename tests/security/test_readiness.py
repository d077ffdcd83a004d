"""Issue 10, finding 8: a store that answers reads but refuses writes left ``/health/ready`` at 200
while every submission answered 503. Readiness now includes a write probe."""

from __future__ import annotations

from pathlib import Path

from bridge.store import open_store
from bridge_dev.sandbox import Sandbox
from tests.web.stack import encounter_for, serve, write_stack


async def test_a_read_only_store_is_not_ready(sandbox_ehr: Sandbox, tmp_path: Path) -> None:
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    store = await open_store(f"sqlite+aiosqlite:///{stack.store_file}")  # created and migrated
    await store.close()
    url = f"sqlite+aiosqlite:///{stack.store_file}"
    config = stack.config.read_text()
    assert url in config
    stack.config.write_text(
        config.replace(url, f"sqlite+aiosqlite:///file:{stack.store_file}?mode=ro&uri=true")
    )
    async with serve(stack) as client:
        key = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
        write = await client.post("/api/v1/encounters", json=encounter_for(stack), headers=key)
        assert write.status == 503, await write.text()  # what the store does with a write
        ready = await client.get("/health/ready")
        body = await ready.json()
        assert ready.status == 503, body
        assert body["checks"]["store"]["ok"] is False
        assert (await client.get("/health")).status == 200  # alive all the same


async def test_a_writable_store_is_ready(sandbox_ehr: Sandbox, tmp_path: Path) -> None:
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    async with serve(stack) as client:
        ready = await client.get("/health/ready")
        assert ready.status == 200, await ready.text()
