"""``bridge init DIR``: a starting point for a new site.

Writes ``DIR/bridge.toml`` (the commented example config shipped in the package), ``DIR/directory.json``
(an example participant, peer, supervisor and consent), and a SMART Backend Services key pair:
``DIR/keys/smart-private.pem`` (stays with the bridge, mode 0600) and ``DIR/keys/smart-jwks.json``
(the public key, to register at each EHR). Then prints what is left to fill in. Never overwrites.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.resources import files as package_files
from pathlib import Path
from typing import TextIO

from joserfc.jwk import KeySet, RSAKey

from bridge.errors import ConfigError

KID = "peer-bridge-1"
_FILES = ("bridge.toml", "directory.json", "keys/smart-private.pem", "keys/smart-jwks.json")
SECRETS = (
    ("BRIDGE_OPS_API_KEY", "the operators' API key ([[api_auth.api_keys]] 'ops'): a long random string"),
    ("BRIDGE_NOTIFY_TOKEN", "the token EHRs send on notifications (server.notification_token_env)"),
)


def example(name: str) -> str:
    """A file shipped in ``bridge/defaults`` (read through importlib.resources)."""
    return package_files("bridge").joinpath("defaults", name).read_text(encoding="utf-8")


def fill_in_lines(config_text: str) -> list[str]:
    """The ``key = value  # FILL IN: ...`` lines of the example config, as ``[table] key: why``."""
    table = ""
    out: list[str] = []
    for line in config_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("#"):
            table = stripped.strip("[]")
        if "FILL IN" in line and "=" in line:
            key = stripped.lstrip("# ").split("=", 1)[0].strip()
            why = line.split("FILL IN", 1)[1].lstrip(": ").strip()
            out.append(f"{table}.{key}" + (f": {why}" if why else ""))
    return out


def write_site(target: Path) -> list[Path]:
    """Write the files (refusing to overwrite any); returns them in the order written."""
    existing = [name for name in _FILES if (target / name).exists()]
    if existing:
        raise ConfigError(str(target / existing[0]), "already exists: bridge init never overwrites")
    (target / "keys").mkdir(parents=True, exist_ok=True)
    key = RSAKey.generate_key(2048, parameters={"kid": KID, "alg": "RS384", "use": "sig"})
    written = []
    for name, text in (
        ("bridge.toml", example("bridge.example.toml")),
        ("directory.json", example("directory.example.json")),
        ("keys/smart-jwks.json", json.dumps(KeySet([key]).as_dict(private=False), indent=2) + "\n"),
    ):
        (target / name).write_text(text, encoding="utf-8")
        written.append(target / name)
    private = target / "keys" / "smart-private.pem"
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.as_pem(private=True))
    written.insert(2, private)
    return written


def report(target: Path, written: list[Path], out: TextIO) -> None:
    out.write(f"wrote {len(written)} files in {target}:\n")
    for path in written:
        out.write(f"  {path}\n")
    out.write(f"\nfill in ({target / 'bridge.toml'}):\n")
    for line in fill_in_lines((target / "bridge.toml").read_text(encoding="utf-8")):
        out.write(f"  {line}\n")
    out.write(f"\nreplace the example people in {target / 'directory.json'} with your own\n")
    out.write(
        f"register {target / 'keys' / 'smart-jwks.json'} at each EHR (SMART Backend Services, client id"
        " = endpoints.clinic.auth.client_id); keep keys/smart-private.pem private\n"
    )
    out.write("\nset in the environment:\n")
    for env, why in SECRETS:
        out.write(f"  {env}: {why}\n")
    out.write(f"\nthen:  bridge check --config {target / 'bridge.toml'}\n")


def run_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    written = write_site(target)
    report(target, written, sys.stdout)
    return 0


def register_init(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="write a commented config, an example directory and a SMART key pair into DIR",
        description="Write DIR/bridge.toml, DIR/directory.json and DIR/keys/ (SMART key pair + JWKS).",
    )
    p.add_argument("dir", metavar="DIR", help="folder to write into (created; existing files are kept)")
    p.set_defaults(handler=run_init)
