"""The real stack for web tests, one builder: a bridge configuration (the session's sandbox EHR, a
SQLite file, the rule files, a directory of made-up people with unique ids per call: the sandbox is
shared) written by :func:`write_stack`, and :func:`serve`, the app over it as ``bridge serve``
builds it (settings from the file, secrets and the directory from the environment)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bridge.config import Settings, load_settings
from bridge.web import create_app
from bridge_dev.sandbox import Sandbox
from bridge_dev.stack import bridge_config, to_toml

MRN = "urn:oid:1.2.3.4.5.1"


@dataclass
class Stack:
    config: Path
    directory: Path
    store_file: Path
    participant_id: str
    peer_id: str
    env: dict[str, str]
    patient_id: str = ""


@contextmanager
def environment(stack: Stack, **extra: str) -> Iterator[Settings]:
    """The stack's settings, with its secrets and directory in the environment meanwhile."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {**stack.env, "BRIDGE_DIRECTORY": str(stack.directory), **extra}.items():
            mp.setenv(key, value)
        yield load_settings(stack.config)


@asynccontextmanager
async def serve(stack: Stack, *, port: int | None = None, **env: str) -> AsyncIterator[TestClient[Any, Any]]:
    """The bridge ``stack`` describes, serving (workers running) until the block ends."""
    with environment(stack, **env) as settings:
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1", port=port)) as client:
            yield client


def add_peer(
    stack: Stack, pid: str, *, role: str = "peer-specialist", level: str = "certified", **extra: Any
) -> str:
    """Another worker of the stack's organization in its directory (``pid``)."""
    data = json.loads(stack.directory.read_text())
    data["peers"].append(
        {
            "id": pid,
            "name": {"given": "Test", "family": "Worker"},
            "credential": "CPRS",
            "certification_level": level,
            "organization_id": "harbor-recovery",
            "role": role,
            **extra,
        }
    )
    stack.directory.write_text(json.dumps(data))
    return pid


async def place_referrals(stack: Stack, ehr: Sandbox, n: int = 1) -> list[str]:
    """What a clinic does before the bridge looks: ``n`` referrals (Task ids) for the stack's
    patient, owned by its organization at the EHR (the bridge's start-up poll finds them)."""
    from bridge_dev.demo import peer_organization_ref, place_referral

    with environment(stack) as settings:
        async with httpx.AsyncClient(base_url=ehr.base_url + "/", timeout=30) as client:
            owner = await peer_organization_ref(client, settings)
            return [
                await place_referral(
                    client, tag=uuid.uuid4().hex[:8], patient_id=stack.patient_id, owner_ref=owner
                )
                for _ in range(n)
            ]


def write_stack(
    ehr: Sandbox,
    workdir: Path,
    *,
    port: int,
    jwks_file: Path | None = None,
    issuer: str = "https://idp.harbor.test",
    audience: str = "peer-bridge",
    peers_see_only_own: bool = False,
) -> Stack:
    tag = uuid.uuid4().hex[:8]
    workdir.mkdir(parents=True, exist_ok=True)
    participant = {
        "id": f"pt-{tag}",
        "name": {"given": "Test", "family": "Participant"},
        "identifiers": {"clinic": {"system": MRN, "value": f"MRN-{tag}"}},
        "home_endpoint": "clinic",
    }
    peer = {
        "id": f"peer-{tag}",
        "name": {"given": "Test", "family": "Peer"},
        "credential": "CPRS",
        "certification_level": "certified",
        "organization_id": "harbor-recovery",
    }
    directory = workdir / "directory.json"
    directory.write_text(json.dumps({"participants": [participant], "peers": [peer]}))
    created = httpx.post(
        f"{ehr.base_url}/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"system": MRN, "value": f"MRN-{tag}"}],
            "name": [{"family": "Participant", "given": ["Test"]}],
        },
        timeout=30,
    ).raise_for_status()
    store_file = workdir / "bridge.db"
    api_auth: dict[str, Any] = {"issuer": issuer, "audience": audience}
    if jwks_file is not None:
        api_auth["jwks_file"] = str(jwks_file)
    if peers_see_only_own:
        api_auth["peers_see_only_own"] = True
    keys = [
        ("peer-app", "BRIDGE_TEST_PEER_KEY", "peer-specialist"),
        ("ops", "BRIDGE_TEST_OPS_KEY", "integrator"),
    ]
    api_auth["api_keys"] = [
        {"name": name, "key_env": env, "role": role, "organization": "harbor-recovery"}
        for name, env, role in keys
    ]
    config = workdir / "bridge.toml"
    cfg = bridge_config(
        ehr.base_url,
        org_name="Harbor Recovery",
        store_url=f"sqlite+aiosqlite:///{store_file}",
        endpoint={"patient_identifier_system": MRN, "subscribe": False},
        # the payloads here have fixed dates (2026-03): keep them inside the accepted window
        rules={"oldest_record_days": 36500},
        server={"host": "127.0.0.1", "port": port},
        api_auth=api_auth,
    )
    config.write_text(to_toml(cfg))
    env = {"BRIDGE_TEST_PEER_KEY": f"peer-key-{tag}", "BRIDGE_TEST_OPS_KEY": f"ops-key-{tag}"}
    return Stack(
        config, directory, store_file, participant["id"], peer["id"], env, patient_id=created.json()["id"]
    )


def encounter_for(stack: Stack, n: int = 0) -> dict[str, Any]:
    return {
        "id": f"enc-{stack.participant_id}-{n}",
        "participant_id": stack.participant_id,
        "peer_id": stack.peer_id,
        "start": "2026-03-02T14:00:00-06:00",
        "end": "2026-03-02T14:45:00-06:00",
        "setting": "community",
        "location_name": "Harbor drop-in center",
        "activities": ["recovery-coaching"],
        "billable": False,
    }
