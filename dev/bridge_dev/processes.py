"""Starting and stopping the development servers (sandbox EHR, Medplum glue, OpenID provider): each
runs in its own process group, is ready when a URL answers 200, and is stopped group and all."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx


def wait_ready(proc: subprocess.Popen[bytes], url: str, *, what: str, log: Path, timeout: float) -> None:
    """Until ``url`` answers 200; a process that exits first, or ``timeout`` seconds, raise
    ``RuntimeError`` with the tail of its ``log`` (the caller stops it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout}s")


def stop_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM the process group, SIGKILL after ten seconds."""
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_server(
    cmd: list[str],
    *,
    cwd: Path,
    log: Path,
    ready_url: str,
    what: str,
    timeout: float,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in a process group of its own (output appended to ``log``) and wait until
    ``ready_url`` answers; if it does not, stop the group and raise ``RuntimeError``."""
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_ready(proc, ready_url, what=what, log=log, timeout=timeout)
    except RuntimeError:
        stop_group(proc)
        raise
    return proc
