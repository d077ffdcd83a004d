"""``bridge outbox list|show|retry|purge``: the operator's view of the durable outbox.

Reads the store named in the config (``[store] url``) or ``--store URL``; never prints payloads
(they carry PHI): ids, states, attempts, errors and the EHR's OperationOutcome only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bridge.config import load_settings
from bridge.errors import ConfigError, InputError, NotFoundInStoreError
from bridge.store import OutboxItem, OutboxState, Store, open_store

_MAX_AGE_DAYS = 36_500  # a century: any larger age overflows the cutoff date


def _age_days(value: str) -> float:
    """An age in days for ``purge``: a negative one would put the cutoff in the future and purge
    work delivered a moment ago, so it is refused with the rest of the nonsense (nan, inf, overflow)."""
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not math.isfinite(days) or not 0 <= days <= _MAX_AGE_DAYS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {_MAX_AGE_DAYS} days")
    return days


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _store_url(args: argparse.Namespace) -> str:
    if args.store:
        return str(args.store)
    return load_settings(args.config).store.url


def _existing_store(url: str) -> str:
    """The operator commands read a store that exists: opening a SQLite path that is not there
    would create an empty store (and its directories) and report 0 items for a typo."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # open_store names the bad URL
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:":
        if not Path(database).is_file():
            raise ConfigError("store.url", f"no store file at {database}")
    return url


async def _with_store(args: argparse.Namespace, work: Any) -> int:
    store: Store = await open_store(_existing_store(_store_url(args)), schema=args.schema)
    try:
        result: int = await work(store)
        return result
    finally:
        await store.close()


def _cells(id_: str, kind: str, endpoint: str, state: str, attempts: str, when: str, err: str, w: int) -> str:
    return f"{id_:<{w}}  {kind:<9} {endpoint:<12} {state:<9} {attempts:>3}  {when:<19}  {err}".rstrip()


def _header(width: int) -> str:
    return _cells("ID", "KIND", "ENDPOINT", "STATE", "TRY", "NEXT ATTEMPT (UTC)", "LAST ERROR", width)


def _row(item: OutboxItem, width: int) -> str:
    err = (item.last_error or "").replace("\n", " ")
    when = item.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if item.state is OutboxState.QUEUED else ""
    return _cells(
        item.id, item.kind, item.endpoint, item.state.value, str(item.attempts), when, err[:60], width
    )


def _list(args: argparse.Namespace) -> int:
    states = [OutboxState(s) for s in args.state] if args.state else None

    async def work(store: Store) -> int:
        items = await store.outbox.list(states=states, endpoint=args.endpoint, limit=args.limit)
        if args.json:
            print(json.dumps([i.summary() for i in items], indent=2))
            return 0
        counts = await store.outbox.counts(endpoint=args.endpoint)
        print("  ".join(f"{k}={v}" for k, v in counts.items()))
        if items:
            width = max(len(i.id) for i in items)
            print(_header(width))
            for item in items:
                print(_row(item, width))
        return 0

    return asyncio.run(_with_store(args, work))


def _show(args: argparse.Namespace) -> int:
    async def work(store: Store) -> int:
        item = await store.outbox.get(args.id)
        data = {
            **item.summary(),
            "last_outcome": item.last_outcome,
            "lease_expires_at": (item.lease_expires_at.isoformat() if item.lease_expires_at else None),
        }
        print(json.dumps(data, indent=2))
        return 0

    return asyncio.run(_with_store(args, work))


async def _not_dead(store: Store, ids: list[str]) -> list[str]:
    """Why each id that is not dead will not be requeued (a typo, or an item in another state), so
    a partial retry is not mistaken for a complete one."""
    reasons = []
    for item_id in dict.fromkeys(ids):
        try:
            item = await store.outbox.get(item_id)
        except NotFoundInStoreError:
            reasons.append(f"  {item_id}: no such item")
            continue
        if item.state is not OutboxState.DEAD:
            reasons.append(f"  {item_id}: {item.state.value}, not dead")
    return reasons


def _retry(args: argparse.Namespace) -> int:
    if not args.ids and not args.all_dead:
        raise InputError("ids", "name the items to retry, or pass --all-dead")

    async def work(store: Store) -> int:
        skipped = [] if args.all_dead else await _not_dead(store, args.ids)
        n = await store.outbox.retry(None if args.all_dead else args.ids, now=datetime.now(UTC))
        print(f"requeued {n} dead item(s)")
        for line in skipped:
            print(line, file=sys.stderr)
        await store.audit.append(
            actor="operator:cli",
            action="outbox.retry",
            subject="outbox",
            at=datetime.now(UTC),
            detail={"ids": args.ids or "all-dead", "requeued": n},
        )
        return 0 if n or args.all_dead else 1

    return asyncio.run(_with_store(args, work))


def _purge(args: argparse.Namespace) -> int:
    states = [OutboxState(s) for s in (args.state or ["delivered"])]
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)

    async def work(store: Store) -> int:
        n = await store.outbox.purge(states=states, older_than=cutoff)
        kinds = ", ".join(s.value for s in states)
        print(f"purged {n} item(s) ({kinds}) older than {args.older_than_days} day(s)")
        await store.audit.append(
            actor="operator:cli",
            action="outbox.purge",
            subject="outbox",
            at=datetime.now(UTC),
            detail={
                "states": [s.value for s in states],
                "older_than_days": args.older_than_days,
                "purged": n,
            },
        )
        return 0

    return asyncio.run(_with_store(args, work))


def register_outbox(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="inspect and repair the outbound queue")
    ops = p.add_subparsers(dest="outbox_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--config", default=None, help="config file (default: $BRIDGE_CONFIG or config/bridge.toml)"
        )
        q.add_argument("--store", default=None, help="store URL (overrides [store] url of the config)")
        q.add_argument("--schema", default=None, help="PostgreSQL schema of the store")

    q = ops.add_parser("list", help="items by state (newest last), with counts")
    common(q)
    q.add_argument("--state", action="append", choices=[s.value for s in OutboxState])
    q.add_argument("--endpoint", default=None)
    q.add_argument("--limit", type=_positive_int, default=100)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=_list)

    q = ops.add_parser("show", help="one item: state, attempts, last error and OperationOutcome")
    common(q)
    q.add_argument("id")
    q.set_defaults(handler=_show)

    q = ops.add_parser("retry", help="put dead items back in the queue (attempts restart)")
    common(q)
    q.add_argument("ids", nargs="*")
    q.add_argument("--all-dead", action="store_true")
    q.set_defaults(handler=_retry)

    q = ops.add_parser("purge", help="delete delivered (or dead) items older than N days")
    common(q)
    q.add_argument("--state", action="append", choices=["delivered", "dead"], default=None)
    q.add_argument("--older-than-days", type=_age_days, default=30.0)
    q.set_defaults(handler=_purge)
