"""The layering in shared/design.md, checked on the import graph: dependencies point down; the
exchange never imports the web layer; the runtime never imports the development kit (bridge_dev)."""

from __future__ import annotations

import ast
import subprocess
import sys
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
# package -> bridge modules it must not import (the layers above it)
FORBIDDEN: dict[str, set[str]] = {
    "exchange": {"bridge.web", "bridge.cli"},
}
HARNESS = "bridge_dev"
# the one place the runtime reaches the development kit: `bridge demo`, when it runs
HARNESS_DOOR = ("cli.py", "_demo")
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


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_never_imports_the_layers_above(package: str) -> None:
    for file in _files(package):
        for name in _imports(file):
            bad = [f for f in FORBIDDEN[package] if name == f or name.startswith(f + ".")]
            assert not bad, f"{file.relative_to(ROOT.parent)} imports {name}: bridge/{package} is below it"


def _harness_imports(path: Path) -> list[str]:
    """Where ``path`` imports the development kit: ``<module>`` or the enclosing function's name."""
    found: list[str] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module:
                names = [child.module]
            if any(n == HARNESS or n.startswith(HARNESS + ".") for n in names):
                found.append(where)
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), "<module>")
    return found


def test_the_runtime_never_imports_the_harness() -> None:
    doors = []
    for file in sorted(ROOT.rglob("*.py")):
        for where in _harness_imports(file):
            doors.append((str(file.relative_to(ROOT)), where))
    assert doors == [HARNESS_DOOR], f"bridge/ imports {HARNESS} at {doors}; only `bridge demo` may"


def test_serving_loads_no_harness() -> None:
    """What `bridge serve` and the workers load: the CLI (every command), the app, the runner."""
    code = (
        "import sys, bridge.cli, bridge.web.app, bridge.exchange.run, bridge.exchange.wiring;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == {HARNESS!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_harness_check_sees_a_module_level_import(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("from bridge_dev import samples\n\ndef later():\n    import bridge_dev.demo\n")
    assert _harness_imports(f) == ["<module>", "later"]


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
