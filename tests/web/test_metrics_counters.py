"""Issue 14: ``/metrics`` lacked counters for policy verdicts and incoming referrals. Here a note
judged through the API and a real referral (placed at the sandbox EHR, received by the start-up
poll, accepted by a peer) show up in them, with rule ids and endpoint names only."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bridge.mappers import referral_id_for
from bridge_dev.sandbox import Sandbox
from tests.web import payloads
from tests.web.conftest import TokenFactory, bearer
from tests.web.stack import place_referrals, serve, write_stack


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name and all(f'{k}="{v}"' in (m.group(2) or "") for k, v in labels.items()):
            return float(m.group(3))
    return 0.0


async def test_verdicts_by_rule(client: TestClient[Any, Any], make_token: TokenFactory) -> None:
    peer = bearer(make_token())
    bad = payloads.note("Told her to cut her buprenorphine dose in half.")
    resp = await client.post("/api/v1/notes/check", json=bad, headers=peer)
    assert resp.status == 200, await resp.text()
    fired = {v["rule"] for v in (await resp.json())["violations"]}
    ok = await client.post("/api/v1/notes/check", json=payloads.note(), headers=peer)
    assert ok.status == 200
    text = await (await client.get("/metrics")).text()
    assert _value(text, "bridge_policy_verdicts_total", subject="note", verdict="block") == 1
    assert _value(text, "bridge_policy_verdicts_total", subject="note", verdict="allow") == 1
    for rule in fired:
        assert _value(text, "bridge_policy_rule_hits_total", subject="note", rule=rule) == 1
    assert "buprenorphine" not in text


async def test_referrals_received_and_acted_on(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0, jwks_file=jwks_file)
    [task] = await place_referrals(stack, sandbox_ehr)
    referral = referral_id_for("clinic", task)
    async with serve(stack) as client:
        peer = bearer(make_token(practitioner_id=stack.peer_id))
        for _ in range(100):  # the start-up poll receives it
            if (await client.get(f"/api/v1/referrals/{referral}", headers=peer)).status == 200:
                break
            await asyncio.sleep(0.1)
        accepted = await client.post(f"/api/v1/referrals/{referral}/accept", json={}, headers=peer)
        assert accepted.status == 200, await accepted.text()
        text = await (await client.get("/metrics")).text()
    assert _value(text, "bridge_referrals_received_total", endpoint="clinic") >= 1
    assert _value(text, "bridge_referral_actions_total", endpoint="clinic", action="accept") == 1
