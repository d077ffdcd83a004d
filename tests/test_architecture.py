"""The layering in shared/design.md, checked on the import graph: dependencies point down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "bridge"

# package -> the bridge modules it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "mappers": {"bridge.domain", "bridge.errors"},
    "roles": {"bridge.domain", "bridge.errors"},
    "clients": {"bridge.errors", "bridge.config"},
    "store": {"bridge.errors", "bridge.config", "bridge.domain"},
}
# I/O and clock modules a pure layer must not import
CLOCK_READS = (".now(", ".utcnow(", ".today(", "time.time(", "monotonic(")
IMPURE = {"httpx", "aiohttp", "sqlalchemy", "asyncio", "socket", "subprocess", "time", "requests"}


def _imports(path: Path, root: Path = ROOT.parent) -> set[str]:
    """Absolute module names ``path`` imports; relative imports are resolved against its package
    (``root`` holds the ``bridge`` directory), so ``from ..exchange import x`` is not overlooked."""
    package = path.relative_to(root).parent.parts if path.is_relative_to(root) else ()
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else ()
            names.add(".".join((*base, *([node.module] if node.module else []))))
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layer_imports_only_lower_layers(package: str) -> None:
    own = f"bridge.{package}"
    for file in _files(package):
        for name in _imports(file):
            if not name.startswith("bridge"):
                continue
            ok = (
                name == own
                or name.startswith(own + ".")
                or any(name == a or name.startswith(a + ".") for a in ALLOWED[package])
            )
            assert ok, f"{file.relative_to(ROOT.parent)} imports {name}: not allowed in bridge/{package}"


@pytest.mark.parametrize("package", ["mappers", "roles"])
def test_pure_layers_do_no_io(package: str) -> None:
    for file in _files(package):
        bad = {n.split(".")[0] for n in _imports(file)} & IMPURE
        assert not bad, f"{file.relative_to(ROOT.parent)} imports {sorted(bad)} in a pure layer"
        text = file.read_text()
        clock = [c for c in CLOCK_READS if c in text]
        assert not clock, f"{file.relative_to(ROOT.parent)} reads the clock ({clock}): pass time in"


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("import httpx\nfrom bridge.exchange import worker\n")
    assert {"httpx", "bridge.exchange"} <= _imports(f)


def test_the_check_sees_a_relative_import(tmp_path: Path) -> None:
    # `from ..exchange import worker` inside bridge/mappers/ is bridge.exchange all the same
    f = tmp_path / "bridge" / "mappers" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text("from ..exchange import worker\nfrom . import codes\nfrom .context import ctx\n")
    assert _imports(f, root=tmp_path) == {"bridge.exchange", "bridge.mappers", "bridge.mappers.context"}
