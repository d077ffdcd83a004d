"""Issue 14: ``bridge outbox list`` printed rows without column headers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import main
from tests.exchange.test_command import _seed


def test_outbox_list_has_a_header_row_over_its_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"
    delivered, dead = _seed(url)
    assert main(["outbox", "list", "--store", url]) == 0
    _counts, header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "ID",
        "KIND",
        "ENDPOINT",
        "STATE",
        "TRY",
        "NEXT",
        "ATTEMPT",
        "(UTC)",
        "LAST",
        "ERROR",
    ]
    assert [r.split()[0] for r in rows] == [delivered, dead]
    # each value starts under its heading
    dead_row = rows[1]
    for title, value in (("STATE", "dead"), ("ENDPOINT", "clinic"), ("LAST ERROR", "[fhir_request_failed]")):
        assert dead_row.index(value) == header.index(title), title
