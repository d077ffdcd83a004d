"""The directory file (participants, peers, consents) read at start-up: unreadable is a config error."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.exchange.directory import InMemoryDirectory


def test_json_nested_past_the_parser_is_a_config_error(tmp_path: Path) -> None:
    deep = tmp_path / "directory.json"
    deep.write_text('{"participants": ' + "[" * 200_000 + "]" * 200_000 + "}")  # was a RecursionError
    with pytest.raises(ConfigError) as exc:
        InMemoryDirectory.from_file(deep)
    assert exc.value.path == "(file)" and "nested too deeply" in exc.value.reason
