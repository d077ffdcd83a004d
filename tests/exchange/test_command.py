"""``bridge outbox list|show|retry|purge`` on a real SQLite store file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.store import OutboxState, open_store


def _seed(url: str) -> tuple[str, str]:
    async def seed() -> tuple[str, str]:
        store = await open_store(url)
        old = datetime.now(UTC) - timedelta(days=40)
        a = await store.outbox.enqueue(
            kind="encounter",
            endpoint="clinic",
            partition_key="p1",
            item_key="enc-1",
            payload={"encounter": {"text": "PHI never printed"}},
            now=old,
        )
        b = await store.outbox.enqueue(
            kind="note", endpoint="clinic", partition_key="p2", item_key="note-1", payload={}, now=old
        )
        await store.outbox.claim(owner="w", now=old, lease_seconds=30, limit=10)
        await store.outbox.mark_delivered(a.id, owner="w", now=old, result={"refs": ["Encounter/1"]})
        await store.outbox.mark_dead(
            b.id,
            owner="w",
            now=old,
            error="[fhir_request_failed] 422",
            outcome={"resourceType": "OperationOutcome", "issue": []},
        )
        await store.close()
        return a.id, b.id

    return asyncio.run(seed())


def test_outbox_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    _delivered, dead = _seed(url)

    assert main(["outbox", "list", "--store", url]) == 0
    out = capsys.readouterr().out
    assert "delivered=1" in out and "dead=1" in out and dead in out and "PHI" not in out

    assert main(["outbox", "list", "--store", url, "--state", "dead", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [dead] and rows[0]["last_error"] == "[fhir_request_failed] 422"

    assert main(["outbox", "show", "--store", url, dead]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "dead" and shown["last_outcome"]["resourceType"] == "OperationOutcome"
    assert "payload" not in shown

    assert main(["outbox", "show", "--store", url, "sub-nope"]) == 3  # store error: not found
    assert "not_found" in capsys.readouterr().err
    assert main(["outbox", "retry", "--store", url]) == 2  # names nothing: usage error

    assert main(["outbox", "retry", "--store", url, dead]) == 0
    assert "requeued 1" in capsys.readouterr().out
    assert main(["outbox", "purge", "--store", url, "--older-than-days", "30"]) == 0
    assert "purged 1" in capsys.readouterr().out

    async def check() -> None:
        store = await open_store(url)
        items = await store.outbox.list()
        assert [(i.id, i.state) for i in items] == [(dead, OutboxState.QUEUED)]
        actions = [e.action for e in await store.audit.entries(subject="outbox")]
        assert actions == ["outbox.retry", "outbox.purge"]
        await store.close()

    asyncio.run(check())


@pytest.mark.parametrize("days", ["-1", "nan", "inf", "99999999999999", "ten"])
def test_purge_refuses_ages_that_are_not_a_past_cutoff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    # a negative age puts the cutoff in the future and would purge items delivered a moment ago;
    # an overflowing one was a traceback
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"

    async def seed_fresh() -> str:
        store = await open_store(url)
        now = datetime.now(UTC)
        item = await store.outbox.enqueue(
            kind="note", endpoint="clinic", partition_key="p", item_key="n-1", payload={}, now=now
        )
        await store.outbox.claim(owner="w", now=now, lease_seconds=30, limit=1)
        await store.outbox.mark_delivered(item.id, owner="w", now=now, result={})
        await store.close()
        return item.id

    fresh = asyncio.run(seed_fresh())
    with pytest.raises(SystemExit) as exited:
        main(["outbox", "purge", "--store", url, "--older-than-days", days])
    assert exited.value.code == 2
    assert "--older-than-days" in capsys.readouterr().err
    assert main(["outbox", "show", "--store", url, fresh]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "delivered"


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_list_refuses_a_limit_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    with pytest.raises(SystemExit) as exited:
        main(["outbox", "list", "--store", url, "--limit", limit])
    assert exited.value.code == 2
    assert "--limit" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["list"], ["show", "sub-1"], ["retry", "--all-dead"], ["purge"]])
def test_a_store_file_that_is_not_there_is_an_error_not_a_new_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    # a typo in --store used to create an empty store (and its directories) and report 0 items
    missing = tmp_path / "typo" / "bridge.db"
    assert main(["outbox", *command[:1], "--store", f"sqlite+aiosqlite:///{missing}", *command[1:]]) == 2
    assert "no store file" in capsys.readouterr().err
    assert not missing.parent.exists()


def test_retry_names_the_ids_it_did_not_requeue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # it printed "requeued 1 dead item(s)" and nothing about a typo or an item that was not dead
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    delivered, dead = _seed(url)
    assert main(["outbox", "retry", "--store", url, dead, delivered, "sub-typo"]) == 0
    captured = capsys.readouterr()
    assert "requeued 1" in captured.out
    assert f"{delivered}: delivered, not dead" in captured.err
    assert "sub-typo: no such item" in captured.err and dead not in captured.err
    assert main(["outbox", "retry", "--store", url, "sub-typo"]) == 1
    assert "sub-typo: no such item" in capsys.readouterr().err
