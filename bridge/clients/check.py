"""bridge check: validate the config, probe every endpoint, print ok / warn / fail per capability.

    bridge check [--config FILE] [--json]     every configured endpoint
    bridge check --endpoint URL [--json]      one endpoint, no config file, no auth

Exit codes: 0 nothing failed (warns allowed), 1 at least one fail, 2 the config is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from bridge.config import load_settings
from bridge.errors import ConfigError

if TYPE_CHECKING:  # the probe pulls in httpx and the FHIR models: loaded only when check runs
    from bridge.clients.probe import EndpointReport

_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def render_table(reports: Sequence[EndpointReport], out: TextIO) -> None:
    rows = [(r.name, f.name, _MARK[f.level], f.reason) for r in reports for f in r.findings]
    header = ("ENDPOINT", "CHECK", "RESULT", "REASON")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        out.write(
            "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3] + "\n"
        )
    for r in reports:
        fails = sum(f.level == "fail" for f in r.findings)
        warns = sum(f.level == "warn" for f in r.findings)
        verdict = "FAIL" if fails else "ok"
        out.write(f"\n{r.name} ({r.base_url}): {verdict} - {fails} fail, {warns} warn")
    out.write("\n")


def render_json(reports: Sequence[EndpointReport], out: TextIO) -> None:
    doc = {"ok": not any(r.failed for r in reports), "endpoints": [r.to_dict() for r in reports]}
    out.write(json.dumps(doc, indent=2) + "\n")


def run_check(args: argparse.Namespace) -> int:
    from bridge.clients.probe import probe_endpoint, probe_settings

    if args.endpoint:
        url = str(args.endpoint).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError("--endpoint", "must start with http:// or https://")
        reports = [asyncio.run(probe_endpoint("endpoint", url))]
    else:
        settings = load_settings(args.config)
        reports = asyncio.run(probe_settings(settings))
    (render_json if args.json else render_table)(reports, sys.stdout)
    return 1 if any(r.failed for r in reports) else 0


def register_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="validate the config and probe every EHR endpoint (ok / warn / fail per capability)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "--config", default=None, help="config file (default: $BRIDGE_CONFIG or config/bridge.toml)"
    )
    p.add_argument(
        "--endpoint", metavar="URL", default=None, help="probe one FHIR base URL, no config, no auth"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run_check)
