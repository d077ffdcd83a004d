"""The package installed as an integrator installs it (issue 14): the wheels built from this tree,
a fresh virtual environment in a temporary folder, the commands run from an empty folder outside
the repository. Templates, static files, rule files and the example config come from the wheel.

``bridge demo`` needs the development kit (the sandbox EHR and its made-up people), which is a
distribution of its own and never a runtime dependency: ``pip install 'peer-bridge[demo]'`` pulls
it, here from the wheel built next to the bridge's (``--find-links``). Dependencies come from the
package index through pip's cache, so a second run costs about a minute.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge_dev.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _clean_env() -> dict[str, str]:
    """No trace of the repository's environment: the installed bridge must stand on its own."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "BRIDGE_CONFIG", "BRIDGE_DIRECTORY", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def _run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env={**_clean_env(), **env}, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the fresh venv's bin folder, an empty working folder), with peer-bridge[demo] installed."""
    base = tmp_path_factory.mktemp("install")
    wheels, venv, work = base / "wheels", base / "venv", base / "work"
    work.mkdir()
    built = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
            str(ROOT / "dev"),
        ],
        cwd=work,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    base_python = getattr(sys, "_base_executable", sys.executable)
    made = _run([base_python, "-m", "venv", str(venv)], cwd=work)
    assert made.returncode == 0, made.stderr
    pip = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--find-links",
            str(wheels),
            "peer-bridge[demo]",
        ],
        cwd=work,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    yield venv / "bin", work


def test_installed_package_has_its_data_and_not_the_repository(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    where = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import bridge, bridge.roles.loader as l; print(bridge.__file__); print(l.packaged_rules_dir())",
        ],
        cwd=work,
    )
    assert where.returncode == 0, where.stderr
    module, rules = where.stdout.split()
    assert str(ROOT) not in module and str(ROOT) not in rules  # the wheel's copy, not this tree
    assert (Path(rules) / "default.toml").is_file() and (Path(rules) / "vocab" / "medications.tsv").is_file()
    version = _run([str(bin_dir / "bridge"), "--version"], cwd=work)
    assert version.returncode == 0 and version.stdout.startswith("bridge 0.")


def test_demo_runs_from_an_empty_folder(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    demo = _run([str(bin_dir / "bridge"), "demo"], cwd=work)
    assert demo.returncode == 0, (demo.stdout + demo.stderr)[-3000:]
    assert "referral completed" in demo.stdout and "is completed at the EHR" in demo.stdout
    assert list(work.iterdir()) == []  # the demo's store and EHR live in temporary folders


def test_init_check_and_serve_from_the_wheel(installed: tuple[Path, Path], sandbox_ehr: Sandbox) -> None:
    bin_dir, work = installed
    bridge = str(bin_dir / "bridge")
    assert _run([bridge, "init", "site"], cwd=work).returncode == 0
    config = work / "site" / "bridge.toml"
    text = config.read_text().replace('"https://ehr.example.org/fhir"', f'"{sandbox_ehr.base_url}"')
    text = text.replace('type = "smart"', 'type = "none"')  # this sandbox has no SMART client for us
    # an identity provider's JWKS: the SMART public key stands in for one here (any valid JWKS)
    text = text.replace(
        'jwks_url = "https://idp.example.org/.well-known/jwks.json"', 'jwks_file = "keys/smart-jwks.json"'
    )
    config.write_text(text)
    secrets = {"BRIDGE_OPS_API_KEY": "ops-key-0123456789abcdef", "BRIDGE_NOTIFY_TOKEN": "notify-0123456789"}
    check = _run([bridge, "check", "--config", "site/bridge.toml"], cwd=work, **secrets)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "FAIL" not in check.stdout and "(bridge)" in check.stdout
    missing = _run([bridge, "check", "--config", "site/bridge.toml"], cwd=work)  # no secrets set
    assert missing.returncode == 1 and "BRIDGE_OPS_API_KEY is not set" in missing.stdout

    from bridge_dev.sandbox import free_port

    port = free_port()
    log = work / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [bridge, "serve", "--config", "site/bridge.toml", "--port", str(port)],
            cwd=work,
            env={**_clean_env(), **secrets},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        import time

        deadline = time.monotonic() + 60
        answers: dict[str, int] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                for path in ("/health/ready", "/static/inbox.css", "/inbox"):
                    answers[path] = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answers.get("/health/ready") == 200, log.read_text()[-3000:]
        assert answers["/static/inbox.css"] == 200  # static files and templates from the wheel
        assert answers["/inbox"] in (200, 401, 303, 302)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
