"""Start and stop the sandbox EHR (``sekmet-fhir``) for tests, benchmarks and the demo.

A development dependency, never a runtime one: the bridge works with any conformant R4 server.
The sandbox runs as a child process on a free loopback port with a throwaway data directory, its
simulator off (it would auto-complete ServiceRequests and Tasks) and inbound logging off.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bridge_dev.processes import start_server, stop_group


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sekmet_executable() -> str:
    local = Path(sys.executable).with_name("sekmet")
    if local.exists():
        return str(local)
    found = shutil.which("sekmet")
    if not found:
        raise RuntimeError("the sandbox EHR is not installed: run `make install` (sekmet-fhir==0.1.1)")
    return found


@dataclass
class Sandbox:
    """A running sandbox EHR. ``base_url`` ends in ``/fhir``; ``root_url`` is the server root."""

    port: int
    data_dir: Path
    server_auth: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.root_url}/auth/token"

    def _settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "base_url": self.base_url,
            "data_dir": str(self.data_dir / "data"),
            "simulator": {"enabled": False},
            "log_inbound": False,
            "own_private_key_path": str(self.data_dir / "keys" / "sekmet_private.pem"),
        }
        if self.server_auth is not None:
            settings["server_auth"] = self.server_auth
        settings.update(self.extra)
        return settings

    def start(self, timeout: float = 30.0) -> Sandbox:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.data_dir / "sekmet.yaml"
        # YAML is a superset of JSON: no YAML writer needed
        cfg.write_text(json.dumps(self._settings()))
        try:
            self.process = start_server(
                [_sekmet_executable(), "serve", "--config", str(cfg)],
                cwd=self.data_dir,
                log=self.data_dir / "sekmet.log",
                ready_url=f"{self.base_url}/metadata",
                what="sandbox EHR",
                timeout=timeout,
                env={k: v for k, v in os.environ.items() if not k.startswith("SEKMET_")},
            )
        except RuntimeError:
            self.stop()  # its own data folder
            raise
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        stop_group(proc)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def sandbox(
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    server_auth: dict[str, Any] | None = None,
    **extra: Any,
) -> Sandbox:
    """A not-yet-started sandbox; use as a context manager or call ``start()``/``stop()``."""
    own = data_dir is None
    path = Path(tempfile.mkdtemp(prefix="sekmet-")) if data_dir is None else data_dir
    return Sandbox(
        port=port or free_port(), data_dir=path, server_auth=server_auth, extra=extra, _own_dir=own
    )
