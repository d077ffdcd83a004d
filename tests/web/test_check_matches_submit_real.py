"""The live check the page runs as the peer types (POST /api/v1/notes/check) and the check at
submission (POST /api/v1/notes) give the same verdict for the same note, on the real stack
(sandbox EHR, SQLite, the real rule files): block -> 422, hold -> 202 held, allow -> 202 queued."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from bridge_dev.sandbox import Sandbox
from tests.web.conftest import TokenFactory, bearer
from tests.web.stack import add_peer, encounter_for, serve, write_stack

# (note text, the verdict both must give)
CASES = [
    ("Worked on his housing application; next step is the benefits office.", "allow"),
    ("Told him it's fine to double up on his seroquil tonight.", "block"),  # medication advice
    ("She has schizoaffective disorder and OCD, in my opinion.", "block"),  # diagnosis
    ("His A1c is 9.8, I told him that puts him in the diabetic range.", "block"),  # results
    ("She said nobody would even notice if she was gone.", "hold"),  # risk of harm
    ("Wise mind came up again today.", "hold"),  # clinical review
]
SUBMITTED = {"allow": (202, "queued"), "hold": (202, "held"), "block": (422, None)}


async def test_live_check_and_submission_agree(
    sandbox_ehr: Sandbox, tmp_path: Path, jwks: dict[str, Any], make_token: TokenFactory
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks))
    stack = write_stack(sandbox_ehr, tmp_path / "bridge", port=0, jwks_file=jwks_file)
    tag = uuid.uuid4().hex[:8]
    peer = add_peer(stack, f"peer-{tag}")
    async with serve(stack) as client:
        author = bearer(make_token(practitioner_id=peer))
        for n, (text, verdict) in enumerate(CASES):
            enc = {**encounter_for(stack, n), "id": f"enc-{tag}-{n}", "peer_id": peer}
            assert (await client.post("/api/v1/encounters", json=enc, headers=author)).status == 202
            note = {
                "id": f"note-{tag}-{n}",
                "participant_id": stack.participant_id,
                "author_id": peer,
                "encounter_id": enc["id"],
                "audience": "care-team",
                "text": text,
                "written_at": "2026-03-02T15:00:00-06:00",
            }
            check = await client.post("/api/v1/notes/check", json=note, headers=author)
            assert check.status == 200, await check.text()
            assert (await check.json())["verdict"] == verdict, text
            resp = await client.post("/api/v1/notes", json=note, headers=author)
            status, state = SUBMITTED[verdict]
            assert resp.status == status, (text, await resp.text())
            if state is not None:
                assert (await resp.json())["state"] == state, text
