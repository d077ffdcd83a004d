"""The development kit's Node.js projects (the OpenID Provider, the Medplum glue), found in the
repository (``dev/idp``, ``dev/medplum``) or, from an installed wheel, copied out of the package
into a cache folder: ``npm ci`` writes ``node_modules`` beside them, never into site-packages."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

_HERE = Path(__file__).resolve().parent
FILES = ("package.json", "package-lock.json", "server.mjs")


def project_dir(name: str) -> Path:
    """The folder to run project ``name`` in: the repository's own, else a cache copy keyed by the
    lock file (``$XDG_CACHE_HOME/peer-bridge``, default ``~/.cache/peer-bridge``)."""
    repo = _HERE.parents[1] / name  # dev/<name> beside the bridge_dev package in the repository
    if (repo / "package-lock.json").is_file():
        return repo
    packaged = _HERE / name
    lock = (packaged / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "peer-bridge"
    target = cache / f"{name}-{hashlib.sha256(lock).hexdigest()[:12]}"
    if not (target / "server.mjs").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for f in FILES:
            shutil.copyfile(packaged / f, target / f)
    return target
