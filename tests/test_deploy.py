"""The Dockerfile, step by step, in a clean folder (issue 14). Base images cannot be pulled on the
development machines, so no image is built here; instead every instruction the Dockerfile runs is
replayed: each stage gets a folder of its own standing in for the image's file system and a fresh
virtual environment standing in for its ``python``; COPY copies from the build context (with
``.dockerignore``) or from the named stage, RUN runs the command with the image's absolute paths
mapped into the stage's folder, ENV sets the environment, and finally CMD is started as the image
would start it and the HEALTHCHECK command is run against it.

What is not replayed, and why: ``useradd`` (it would change this machine's users; the test checks
that it creates the unprivileged user that USER switches to), ``--no-cache-dir`` (pip's cache is
kept so the test costs about a minute), and the listen address 0.0.0.0 (127.0.0.1 here: a shared
machine). The compose file and the systemd unit are checked for what they must say.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bridge_dev.sandbox import Sandbox, free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@dataclass
class Instruction:
    op: str
    args: str


@dataclass
class Stage:
    name: str
    root: Path
    python: Path
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def parse(dockerfile: Path) -> list[Instruction]:
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in text.splitlines():
        if line.strip():
            op, _, args = line.strip().partition(" ")
            out.append(Instruction(op.upper(), " ".join(args.split())))
    return out


def _ignored(context: Path) -> list[str]:
    lines = (context / ".dockerignore").read_text().splitlines()
    return [p.strip() for p in lines if p.strip() and not p.startswith("#")]


def _copy_from_context(context: Path, src: str, dest: Path, ignore: list[str]) -> None:
    def skip(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(context)
        return {
            n
            for n in names
            for pat in ignore
            if fnmatch.fnmatch(str(rel / n), pat) or fnmatch.fnmatch(n, pat.removeprefix("**/"))
        }

    path = context / src
    if path.is_dir():
        shutil.copytree(path, dest, symlinks=True, ignore=skip, dirs_exist_ok=True)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)


class Replay:
    def __init__(self, context: Path, base: Path) -> None:
        self.context = context
        self.base = base
        self.stages: dict[str, Stage] = {}
        self.stage: Stage | None = None
        self.ignore = _ignored(context)

    def inside(self, stage: Stage, path: str) -> Path:
        absolute = path if path.startswith("/") else f"{stage.workdir.rstrip('/')}/{path}"
        return stage.root / absolute.lstrip("/")

    def map_paths(self, stage: Stage, command: str) -> str:
        """Every absolute path in ``command`` is the image's: inside the stage's folder. Then
        ``python`` is the stage's stand-in interpreter."""
        command = re.sub(r"(?<![\w.-])/[\w./-]+", lambda m: str(stage.root / m.group(0).lstrip("/")), command)
        return re.sub(r"(?<![\w./-])python(?= )", str(stage.python), command)

    def run(self, instructions: list[Instruction]) -> None:
        for ins in instructions:
            getattr(self, f"op_{ins.op.lower()}")(ins.args)

    def op_from(self, args: str) -> None:
        parts = args.split()
        name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"stage{len(self.stages)}"
        root = self.base / name
        root.mkdir()
        venv = self.base / f"{name}-python"
        subprocess.run(
            [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)], check=True
        )
        self.stage = self.stages[name] = Stage(name, root, venv / "bin" / "python")

    def op_workdir(self, args: str) -> None:
        assert self.stage is not None
        self.stage.workdir = args
        self.inside(self.stage, args).mkdir(parents=True, exist_ok=True)

    def op_copy(self, args: str) -> None:
        assert self.stage is not None
        words = args.split()
        source_stage = None
        if words[0].startswith("--from="):
            source_stage = self.stages[words.pop(0).removeprefix("--from=")]
        *sources, dest = words
        for src in sources:
            target = self.inside(self.stage, dest)
            if dest.endswith("/") or len(sources) > 1:
                target = target / Path(src).name
            if source_stage is not None:
                shutil.copytree(self.inside(source_stage, src), target, symlinks=True, dirs_exist_ok=True)
            else:
                _copy_from_context(self.context, src, target, self.ignore)

    def op_run(self, args: str) -> None:
        assert self.stage is not None
        if args.startswith("useradd"):
            words = shlex.split(args)
            self.useradd = words[-1]
            assert "--system" in words
            return
        command = self.map_paths(self.stage, args.replace("--no-cache-dir ", ""))
        done = subprocess.run(
            command,
            shell=True,
            cwd=self.inside(self.stage, self.stage.workdir),
            capture_output=True,
            text=True,
            timeout=900,
            env={**_clean_env(), **self.stage.env},
        )
        assert done.returncode == 0, f"RUN {args}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"

    def op_user(self, args: str) -> None:
        assert self.stage is not None
        self.stage.user = args

    def op_env(self, args: str) -> None:
        assert self.stage is not None
        for key, value in (w.split("=", 1) for w in shlex.split(args)):
            self.stage.env[key] = value

    def op_expose(self, args: str) -> None:
        self.exposed = args

    def op_healthcheck(self, args: str) -> None:
        assert self.stage is not None
        self.stage.healthcheck = _exec_form(args[args.index("CMD") + 3 :])
        self.healthcheck_options = args[: args.index("CMD")]

    def op_cmd(self, args: str) -> None:
        assert self.stage is not None
        self.stage.cmd = _exec_form(args)


def _exec_form(text: str) -> list[str]:
    import json

    value = json.loads(text.strip())
    assert isinstance(value, list), "exec form (a JSON list), so signals reach the bridge"
    return [str(v) for v in value]


def _clean_env() -> dict[str, str]:
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "BRIDGE_CONFIG", "BRIDGE_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    return env


def test_every_dockerfile_step_in_a_clean_folder(tmp_path: Path, sandbox_ehr: Sandbox) -> None:
    replay = Replay(ROOT, tmp_path)
    replay.run(parse(ROOT / "Dockerfile"))
    final = list(replay.stages.values())[-1]
    assert final.user not in ("root", "0") and final.user == replay.useradd  # non-root
    assert replay.exposed == "8080"
    assert "/health/ready" in " ".join(final.healthcheck)
    # the image has no repository: the wheel brought the rules, templates and static files
    bin_dir = final.python.parent
    assert (bin_dir / "bridge").exists() and not (final.root / "wheels").exists()

    # what an operator mounts at /etc/bridge: `bridge init`, filled in for the sandbox EHR
    etc = Path(final.env["BRIDGE_CONFIG"]).parent
    site = final.root / str(etc).lstrip("/")
    subprocess.run(
        [str(bin_dir / "bridge"), "init", str(site)], check=True, env=_clean_env(), capture_output=True
    )
    config = site / "bridge.toml"
    text = config.read_text().replace('"https://ehr.example.org/fhir"', f'"{sandbox_ehr.base_url}"')
    text = text.replace('type = "smart"', 'type = "none"')
    text = text.replace(
        'jwks_url = "https://idp.example.org/.well-known/jwks.json"', 'jwks_file = "keys/smart-jwks.json"'
    )
    store = final.root / "var" / "lib" / "bridge" / "bridge.db"  # the image's home: writable
    text = text.replace("sqlite+aiosqlite:///var/bridge.db", f"sqlite+aiosqlite:///{store}")
    config.write_text(text)

    port = free_port()
    env = {
        **_clean_env(),
        **{k: replay.map_paths(final, v) for k, v in final.env.items()},
        "PATH": f"{bin_dir}{os.pathsep}{_clean_env()['PATH']}",
        "BRIDGE_OPS_API_KEY": "ops-key-0123456789abcdef",
        "BRIDGE_NOTIFY_TOKEN": "notify-0123456789",
    }
    assert env["BRIDGE_CONFIG"] == str(config)
    cmd = [a.replace("0.0.0.0", "127.0.0.1").replace("8080", str(port)) for a in final.cmd]
    health = [a.replace("8080", str(port)) for a in final.healthcheck]
    health[0] = str(final.python) if health[0] == "python" else health[0]
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=replay.inside(final, final.workdir), env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        healthy = False
        while time.monotonic() < deadline and proc.poll() is None and not healthy:
            healthy = subprocess.run(health, env=env, capture_output=True, timeout=10).returncode == 0
            time.sleep(0.5)
        assert healthy, log.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()[-3000:]  # SIGTERM: a graceful stop


def test_compose_runs_two_instances_on_postgresql() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    assert "image: postgres:" in text and "bridge-a:" in text and "bridge-b:" in text
    assert "postgresql+asyncpg://" in text and "PGPASSWORD" in text
    assert "password" not in re.sub(r"(?i)pg_password|POSTGRES_PASSWORD_FILE|PGPASSWORD", "", text).lower()


def test_systemd_unit_runs_serve_unprivileged() -> None:
    unit = (ROOT / "deploy" / "peer-bridge.service").read_text()
    assert re.search(r"^ExecStart=\S+/bridge serve$", unit, re.M)
    assert re.search(r"^User=(?!root)\S+", unit, re.M) and "EnvironmentFile=" in unit
    assert "KillSignal=SIGTERM" in unit and "NoNewPrivileges=yes" in unit
