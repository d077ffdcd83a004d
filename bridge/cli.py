"""The ``bridge`` command. The only place that turns errors into exit codes.

Exit codes: 0 ok; 1 the command ran and found failures (``check`` with a fail); 2 usage or
configuration error (the message names the key path); 3 an exchange/store error.
Subcommands are registered explicitly in ``_COMMANDS`` (no plugin discovery).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from bridge.errors import BridgeError, ConfigError, ExchangeError, InputError, RuleFileError, StoreError

Handler = Callable[[argparse.Namespace], int]


def _add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", default=None, help="config file (default: $BRIDGE_CONFIG or config/bridge.toml)"
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__.splitlines()[0] if __doc__ else None)
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

from bridge.clients.check import register_check  # noqa: E402 - registered in order, below the type

_COMMANDS.append(register_check)

from bridge.roles.command import register as register_rules  # noqa: E402 - same pattern as above

_COMMANDS.append(register_rules)

from bridge.exchange.command import register_outbox  # noqa: E402 - same pattern as above

_COMMANDS.append(register_outbox)

from bridge.web.command import register_serve  # noqa: E402 - same pattern as above

_COMMANDS.append(register_serve)

from bridge.demo import register_demo  # noqa: E402 - same pattern as above

_COMMANDS.append(register_demo)


if __name__ == "__main__":
    sys.exit(main())
