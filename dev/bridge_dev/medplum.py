"""Start and stop the second FHIR server: Medplum's FHIR router in memory behind ``dev/medplum``.

A development dependency, like the sandbox (:mod:`bridge_dev.sandbox`): the npm packages are pinned
in ``dev/medplum/package-lock.json`` and installed with ``npm ci`` the first time a server starts
(``node_modules`` is not committed). The server runs as a child process on a free loopback port;
its data lives in memory and goes with the process.

It differs from the sandbox where real EHRs differ: a CapabilityStatement that lists no resources,
UUID version ids, no ``_include``, no subscriptions, searches cut at 100 entries with no paging
links. For tests it can refuse chosen interactions (``refuse``) and run Medplum's own validator
over everything stored (``validate``).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bridge_dev.node import project_dir
from bridge_dev.processes import start_server, stop_group
from bridge_dev.sandbox import free_port

GLUE_DIR = project_dir("medplum")


def _node() -> str:
    found = shutil.which("node")
    if not found:
        raise RuntimeError("the Medplum test server needs Node.js 20 (`node` not found)")
    return found


def ensure_installed(glue_dir: Path = GLUE_DIR) -> None:
    """``npm ci`` once (under a lock, so parallel test processes do not race)."""
    marker = glue_dir / "node_modules" / "@medplum" / "fhir-router" / "package.json"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("the Medplum test server needs npm to install its packages")
    with open(glue_dir / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=glue_dir,
            check=True,
            stdout=subprocess.DEVNULL,
        )


@dataclass
class MedplumServer:
    """A running Medplum router. ``base_url`` ends in ``/fhir``; ``root_url`` is the server root."""

    port: int
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/fhir"

    def start(self, timeout: float = 90.0) -> MedplumServer:
        ensure_installed()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.process = start_server(
                [_node(), str(GLUE_DIR / "server.mjs"), "--port", str(self.port)],
                cwd=GLUE_DIR,
                log=self.log_dir / "medplum.log",
                ready_url=f"{self.base_url}/metadata",
                what="Medplum test server",
                timeout=timeout,
            )
        except RuntimeError:
            self.stop()  # its own log folder
            raise
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        stop_group(proc)
        if self._own_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    # --- test hooks (outside the FHIR base) -------------------------------------------------------

    def refuse(self, *rules: tuple[str, str, int]) -> None:
        """Answer ``(method, resource type)`` with ``status`` from now on (also inside
        transactions); no rules: refuse nothing."""
        body = {"rules": [{"method": m, "type": t, "status": s} for m, t, s in rules]}
        httpx.post(f"{self.root_url}/admin/refuse", json=body, timeout=30).raise_for_status()

    def validate(self) -> dict[str, Any]:
        """Medplum's ``validateResource`` over every resource stored: ``{checked, problems}``."""
        r = httpx.get(f"{self.root_url}/admin/validate", timeout=60)
        r.raise_for_status()
        return dict(r.json())

    def __enter__(self) -> MedplumServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def medplum(log_dir: Path | None = None, *, port: int | None = None) -> MedplumServer:
    """A not-yet-started Medplum server; use as a context manager or call ``start()``/``stop()``."""
    own = log_dir is None
    path = Path(tempfile.mkdtemp(prefix="medplum-")) if log_dir is None else log_dir
    return MedplumServer(port=port or free_port(), log_dir=path, _own_dir=own)
