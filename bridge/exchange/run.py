"""Run the exchange workers without the web layer: ``python -m bridge.exchange.run``.

    python -m bridge.exchange.run --config config/bridge.toml --directory directory.json \
        [--schema S] [--until-idle] [--no-inbound] [--owner NAME]

For deployments that scale delivery apart from the API (several of these on one PostgreSQL share
the outbox through leases), and for tests and benchmarks (``--until-idle`` exits 0 once nothing is
queued or being sent). SIGTERM/SIGINT stop claiming, finish what is in flight, and exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from bridge.config import load_settings
from bridge.errors import BridgeError
from bridge.exchange.directory import InMemoryDirectory
from bridge.exchange.inbound import InboundSettings
from bridge.exchange.outbound import OutboundSettings
from bridge.exchange.wiring import ExchangeService


async def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    directory = InMemoryDirectory.from_file(args.directory)
    outbound = OutboundSettings(
        lease_seconds=settings.store.lease_seconds,
        max_attempts=settings.outbox.max_attempts,
        base_backoff_seconds=settings.outbox.base_backoff_seconds,
        max_backoff_seconds=settings.outbox.max_backoff_seconds,
        idle_poll_seconds=args.idle_poll,
    )
    svc = await ExchangeService.open(
        settings,
        directory=directory,
        store_schema=args.schema,
        owner=args.owner,
        outbound=outbound,
        inbound=InboundSettings() if args.no_inbound else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    svc.worker.start()
    if not args.no_inbound:
        svc.inbound.start()
    print(json.dumps({"ready": svc.owner}), flush=True)
    try:
        while not stop.is_set():
            if args.until_idle:
                counts = await svc.store.outbox.counts()
                if counts["queued"] == 0 and counts["sending"] == 0:
                    break
            try:
                await asyncio.wait_for(stop.wait(), timeout=0.2)
            except TimeoutError:
                pass
    finally:
        stats = {name: vars(s) for name, s in svc.worker.stats().items()}
        await svc.close()
    print(json.dumps({"owner": svc.owner, "stats": stats}), flush=True)
    return 0


async def start_worker(
    config: Path,
    directory: Path,
    *,
    owner: str,
    schema: str | None = None,
    idle_poll: float = 1.0,
    cwd: Path | None = None,
    ready_timeout: float = 60.0,
) -> tuple[asyncio.subprocess.Process, dict[str, object]]:
    """Start this module as a child process (outbound only, ``--no-inbound``) for tests and
    benchmarks, and wait for its first line: the process and that line, ``{"ready": owner}``."""
    args = ["--config", str(config), "--directory", str(directory), *(["--schema", schema] if schema else [])]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.exchange.run",
        *args,
        "--no-inbound",
        "--idle-poll",
        str(idle_poll),
        "--owner",
        owner,
        stdout=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    assert proc.stdout is not None  # PIPE above
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=ready_timeout)
    return proc, json.loads(line)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bridge.exchange.run", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--directory", type=Path, required=True, help="JSON: participants, peers, consents")
    p.add_argument("--schema", default=None, help="PostgreSQL schema of the store")
    p.add_argument("--owner", default=None, help="this instance's name in leases (default: host-pid-random)")
    p.add_argument("--until-idle", action="store_true")
    p.add_argument("--no-inbound", action="store_true")
    p.add_argument("--idle-poll", type=float, default=1.0)
    args = p.parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except BridgeError as exc:
        print(f"error [{exc.code}] {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
