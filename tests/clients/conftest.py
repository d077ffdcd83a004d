"""Fixtures for the client tests: the loopback fault proxy in front of the shared sandbox EHR."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge_dev.sandbox import Sandbox

sys.path.insert(0, str(Path(__file__).parent))
from faultproxy import FaultProxy


@pytest.fixture
async def proxy(sandbox_ehr: Sandbox) -> AsyncIterator[FaultProxy]:
    fp = await FaultProxy(sandbox_ehr.root_url).start()
    try:
        yield fp
    finally:
        await fp.close()
