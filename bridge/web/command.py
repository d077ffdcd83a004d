"""``bridge serve``: run the HTTP service until SIGINT/SIGTERM, then shut down gracefully.

On a signal the listener closes first (no new requests), requests in progress get up to
``--shutdown-timeout`` seconds, then the ``cleanup_ctx`` closes the exchange: the outbound worker
stops claiming and waits for deliveries in flight, so each one ends recorded as delivered, queued for
a retry, or dead — never left leased to a process that is gone.
"""

from __future__ import annotations

import argparse
import gc
import logging
import socket

from aiohttp import web

from bridge.config import load_settings
from bridge.errors import ConfigError
from bridge.exchange.directory import InMemoryDirectory, directory_file, load_directory
from bridge.observability import configure_logging
from bridge.web.app import create_app

log = logging.getLogger("bridge.web")


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket before anything starts, so a port in use is a clean error
    naming the key (exit 2), not a traceback after "bridge serving"."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("server.port", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    # no directory file: create_app marks the bridge not ready (every participant would be unknown)
    directory = (
        InMemoryDirectory.from_file(args.directory)
        if args.directory
        else load_directory(settings)
        if directory_file(settings).exists()
        else None
    )
    app = create_app(settings, directory=directory)
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    sock = _listen(host, port)
    port = sock.getsockname()[1]

    async def announce(app: web.Application) -> None:
        log.info("bridge serving", extra={"event": "started", "port": port})

    async def goodbye(app: web.Application) -> None:
        log.info("bridge stopping: finishing requests and deliveries in flight", extra={"event": "stopping"})

    async def freeze_startup_objects(app: web.Application) -> None:
        # what start-up built (rules, vocabularies, the risk screen's weights, FHIR models) lives
        # as long as the process: out of the collector's sight, a full collection no longer walks
        # it, and submits stop stalling behind 100-200 ms pauses (issue 15: p99 at 50/s ~300 -> ~60 ms)
        gc.collect()
        gc.freeze()

    app.on_startup.append(announce)
    app.on_startup.append(freeze_startup_objects)  # after create_app's own start-up hooks
    app.on_shutdown.append(goodbye)
    web.run_app(
        app,
        sock=sock,
        print=None,
        access_log=None,  # our middleware logs requests (route, status, duration; no query strings)
        shutdown_timeout=args.shutdown_timeout,
        handle_signals=True,
    )
    log.info("bridge stopped", extra={"event": "stopped"})
    return 0


def register_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the HTTP API, the peer inbox and the exchange workers")
    p.add_argument("--config", default=None, help="config file (default: $BRIDGE_CONFIG, config/bridge.toml)")
    p.add_argument("--host", default=None, help="listen address (default: server.host)")
    p.add_argument("--port", type=int, default=None, help="listen port (default: server.port)")
    p.add_argument(
        "--directory",
        default=None,
        help="participants/peers/consents JSON (default: $BRIDGE_DIRECTORY or directory.json by the config)",
    )
    p.add_argument("--shutdown-timeout", type=float, default=30.0, help="seconds for requests in flight")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(handler=serve)
