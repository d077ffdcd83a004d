"""The ``bridge`` command. The only place that turns errors into exit codes.

Usage lines for ``--help`` live in ``DESCRIPTION`` (this docstring is for readers of the code).

Exit codes: 0 ok; 1 the command ran and found failures (``check`` with a fail); 2 usage or
configuration error (the message names the key path); 3 an exchange/store error.
Subcommands are registered explicitly in ``_COMMANDS`` (no plugin discovery).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from bridge.errors import BridgeError, ConfigError, ExchangeError, InputError, RuleFileError, StoreError

Handler = Callable[[argparse.Namespace], int]


def _add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default=None, help="config file (default: $BRIDGE_CONFIG or config/bridge.toml)"
    )


DESCRIPTION = "Peer Bridge: peer-support work into clinic EHRs as FHIR R4, referrals back to peers."
EPILOG = """start here:
  bridge init site                          write a config, a directory and SMART keys to fill in
  bridge check --config site/bridge.toml    everything serve needs (config, store, rules, IdP, EHRs)
  bridge serve --config site/bridge.toml    the API, the inbox and ops pages, the exchange workers
  bridge demo                               the whole story against a sandbox EHR (needs [demo])

exit codes: 0 ok, 1 a check failed, 2 usage or configuration error, 3 exchange or store error"""


def _version() -> str:
    try:
        return version("peer-bridge")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bridge {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _COMMANDS:
        register(sub)
    return parser


def _exit_code(exc: BridgeError) -> int:
    if isinstance(exc, (ConfigError, InputError, RuleFileError)):
        return 2
    if isinstance(exc, (ExchangeError, StoreError)):
        return 3
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BridgeError as exc:
        print(f"bridge {args.command}: error [{exc.code}] {exc.message}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130


# --- subcommands -------------------------------------------------------------------------------

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
_COMMANDS: list[Register] = []

from bridge.scaffold import register_init  # noqa: E402 - registered in order, below the type

_COMMANDS.append(register_init)

from bridge.preflight import register_check  # noqa: E402 - same pattern (probes: bridge.clients.check)

_COMMANDS.append(register_check)

from bridge.roles.command import register as register_rules  # noqa: E402 - same pattern as above

_COMMANDS.append(register_rules)

from bridge.exchange.command import register_outbox  # noqa: E402 - same pattern as above

_COMMANDS.append(register_outbox)

from bridge.web.command import register_serve  # noqa: E402 - same pattern as above

_COMMANDS.append(register_serve)


def _demo(args: argparse.Namespace) -> int:
    # the demo is development kit (sandbox EHR, made-up people): loaded only when asked for, so
    # nothing else in the bridge, `bridge serve` included, ever imports it
    try:
        from bridge_dev.demo import demo
    except ModuleNotFoundError:
        print(
            "bridge demo: needs the development kit (sandbox EHR): pip install 'peer-bridge[demo]'"
            " (from the repository: make demo)",
            file=sys.stderr,
        )
        return 2
    return demo(args)


def register_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="play the whole story against a sandbox EHR (SQLite, free ports)")
    p.add_argument("--keep-running", action="store_true", help="leave the EHR and the bridge up afterwards")
    p.add_argument("--export", metavar="DIR", default=None, help="write the EHR's resources as NDJSON here")
    p.add_argument("-v", "--verbose", action="store_true", help="show the bridge's JSON logs on stderr")
    p.add_argument(
        "--ehr",
        choices=("sekmet", "medplum"),
        default="sekmet",
        help="the FHIR server to play it on: the sandbox EHR, or Medplum's FHIR router in memory",
    )
    p.set_defaults(handler=_demo)


_COMMANDS.append(register_demo)


if __name__ == "__main__":
    sys.exit(main())
