"""Issue 14's integrator findings on ``bridge init``, ``bridge check`` and ``bridge serve``: each one
failed before. ``check`` ok means ``serve`` starts; everything ``serve`` refuses, ``check`` names
first, all at once, with the key path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, KeySet

from bridge.cli import main
from bridge.config import load_settings
from bridge.errors import ConfigError
from bridge_dev.sandbox import Sandbox, free_port, sandbox

BRIDGE = str(Path(sys.executable).with_name("bridge"))
SECRETS = {"BRIDGE_OPS_API_KEY": "ops-key-for-tests-0123456789", "BRIDGE_NOTIFY_TOKEN": "notify-0123456789"}


@pytest.fixture(scope="module")
def site_ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox EHR of its own that knows the SMART key ``bridge init`` wrote (registered from
    the JWKS file, as an integrator registers it at a real EHR)."""
    site = tmp_path_factory.mktemp("site") / "site"
    assert main(["init", str(site)]) == 0
    jwks = json.loads((site / "keys" / "smart-jwks.json").read_text())
    auth = {
        "types": ["smart"],
        "token_lifetime": 300,
        "smart_clients": [{"client_id": "peer-bridge", "scopes": "system/*.*", "jwks": jwks}],
    }
    with sandbox(tmp_path_factory.mktemp("sekmet-site"), server_auth=auth) as ehr:
        yield ehr, site


def _configure(site: Path, ehr: Sandbox, **replace: str) -> Path:
    """Fill in what ``bridge init`` asks for: the EHR's URL and an identity provider's JWKS."""
    idp = ECKey.generate_key("P-256", parameters={"kid": "idp-1", "alg": "ES256"})
    (site / "keys" / "idp-jwks.json").write_text(json.dumps(KeySet([idp]).as_dict(private=False)))
    config = site / "bridge.toml"
    text = (site / "bridge.toml.orig").read_text() if (site / "bridge.toml.orig").exists() else None
    if text is None:
        text = config.read_text()
        (site / "bridge.toml.orig").write_text(text)
    text = text.replace('"https://ehr.example.org/fhir"', f'"{ehr.base_url}"')
    text = text.replace(
        'jwks_url = "https://idp.example.org/.well-known/jwks.json"', 'jwks_file = "keys/idp-jwks.json"'
    )
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    config.write_text(text)
    return config


def _check(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["check", "--config", str(config), "--json"])
    return code, json.loads(capsys.readouterr().out)


def _site_levels(doc: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for c in doc["site"]["checks"]:
        out.setdefault(c["check"], []).append((c["level"], c["reason"]))
    return out


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BRIDGE_DIRECTORY", raising=False)


def test_init_writes_a_site_and_says_what_to_fill_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    for name in ("bridge.toml", "directory.json", "keys/smart-private.pem", "keys/smart-jwks.json"):
        assert (tmp_path / "s" / name).is_file(), name
    assert oct((tmp_path / "s" / "keys" / "smart-private.pem").stat().st_mode & 0o777) == "0o600"
    jwks = json.loads((tmp_path / "s" / "keys" / "smart-jwks.json").read_text())
    assert [k["kty"] for k in jwks["keys"]] == ["RSA"] and "d" not in jwks["keys"][0]  # public only
    for what in ("endpoints.clinic.base_url", "api_auth.issuer", "BRIDGE_OPS_API_KEY", "smart-jwks.json"):
        assert what in out, what
    # the example config is valid as written (only its values are placeholders)
    assert load_settings(tmp_path / "s" / "bridge.toml").organization.id == "my-peer-org"
    assert main(["init", str(tmp_path / "s")]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err


def test_config_problems_come_all_at_once_with_suggestions(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[organization]\nid = "x"\nname = "x"\nidentifier_system = "https://x"\n'
        '[endpoints.clinic]\nbase_url = "http://127.0.0.1:9/fhir"\nmax_concurency = 4\n'
        '[rules]\njurisdiction = "Texas"\n[stor]\nurl = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    lines = str(info.value).splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "endpoints.clinic.max_concurency: unknown key (did you mean max_concurrency?)",
        "rules.jurisdiction: 'Texas' is not a two-letter state code (did you mean \"TX\"?)",
        "stor: unknown key (did you mean store?)",
    ]


def test_check_passes_and_serve_starts(
    site_ehr: tuple[Sandbox, Path], secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr, site = site_ehr
    config = _configure(site, ehr)
    code, doc = _check(config, capsys)
    levels = _site_levels(doc)
    assert code == 0, doc
    assert {name: {lvl for lvl, _ in found} for name, found in levels.items()} == {
        "config": {"ok"},
        "secrets": {"ok"},
        "rules": {"ok"},
        "store": {"ok"},
        "identity-provider": {"ok"},
        "directory": {"ok"},
    }
    checks = {c["check"]: c["level"] for c in doc["endpoints"][0]["checks"]}
    assert checks["token"] == "ok"  # the SMART key bridge init wrote, registered at the EHR
    # the relative SQLite path lives beside the config, not wherever check was started
    assert (site / "var" / "bridge.db").is_file()
    port = free_port()
    log = site / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [BRIDGE, "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **SECRETS},
        )
    try:
        assert _ready(f"http://127.0.0.1:{port}", proc, log) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"bridge serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            resp = httpx.get(f"{url}/health/ready", timeout=2)
            if resp.status_code == 200:
                return 200
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return 0


def test_check_names_every_problem_serve_would_refuse(
    site_ehr: tuple[Sandbox, Path],
    secrets: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ehr, site = site_ehr
    monkeypatch.delenv("BRIDGE_OPS_API_KEY")
    dead_port = free_port()
    config = _configure(
        site,
        ehr,
        **{
            'jurisdiction = "TX"': 'jurisdiction = "CA"',  # no overlay ships for it
            'url = "sqlite+aiosqlite:///var/bridge.db"': f'url = "postgresql+asyncpg://u@127.0.0.1:{dead_port}/x"',
            'jwks_file = "keys/idp-jwks.json"': 'jwks_file = "keys/nope.json"',
        },
    )
    (site / "directory.json").rename(site / "directory.json.away")
    try:
        code, doc = _check(config, capsys)
    finally:
        (site / "directory.json.away").rename(site / "directory.json")
    levels = _site_levels(doc)
    assert code == 1 and doc["ok"] is False
    assert levels["secrets"] == [
        ("fail", "api_auth.api_keys[0].key_env: environment variable BRIDGE_OPS_API_KEY is not set")
    ]
    assert levels["rules"][0][0] == "fail" and "ca.toml" in levels["rules"][0][1]
    assert levels["store"][0][0] == "fail" and levels["store"][0][1].startswith("store.url:")
    assert levels["identity-provider"][0] == ("fail", levels["identity-provider"][0][1])
    assert "api_auth.jwks_file" in levels["identity-provider"][0][1]
    assert levels["directory"][0][0] == "fail"
    # and serve refuses the same config with a clean error, never a traceback
    proc = subprocess.run(
        [BRIDGE, "serve", "--config", str(config), "--port", str(free_port())],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "BRIDGE_OPS_API_KEY"},
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_check_without_identity_provider_fails(
    site_ehr: tuple[Sandbox, Path], secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr, site = site_ehr
    config = _configure(
        site,
        ehr,
        **{
            'issuer = "https://idp.example.org"': "",
            'audience = "peer-bridge"': "",
            'jwks_file = "keys/idp-jwks.json"': "",
        },
    )
    code, doc = _check(config, capsys)
    assert code == 1
    assert _site_levels(doc)["identity-provider"][0][0] == "fail"


def test_port_in_use_is_a_clean_error_before_started(site_ehr: tuple[Sandbox, Path], secrets: None) -> None:
    ehr, site = site_ehr
    config = _configure(site, ehr)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [BRIDGE, "serve", "--config", str(config), "--port", str(port)],
            capture_output=True,
            text=True,
            env={**os.environ, **SECRETS},
            timeout=60,
        )
    assert proc.returncode == 2, proc.stderr
    assert f"server.port: cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr and '"event": "started"' not in proc.stderr


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "``" not in out and "The only place that turns errors" not in out  # not the module docstring
    assert "bridge init" in out and "bridge check" in out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("bridge 0.")


def test_check_names_the_directory_entry_that_does_not_parse(
    site_ehr: tuple[Sandbox, Path], secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ehr, site = site_ehr
    config = _configure(site, ehr)
    good = (site / "directory.json").read_text()
    data = json.loads(good)
    del data["peers"][0]["credential"]
    (site / "directory.json").write_text(json.dumps(data))
    try:
        code, doc = _check(config, capsys)
    finally:
        (site / "directory.json").write_text(good)
    [(level, reason)] = _site_levels(doc)["directory"]
    assert code == 1 and level == "fail" and "peers.0.credential" in reason
