"""One builder for a real bridge's configuration (tests, benchmarks, the demo): the settings of a
bridge for one peer organization sending to one EHR endpoint, ``clinic``, with the repository's
rule files, as a dict for ``settings_from_dict`` or as the ``bridge.toml`` a process reads.

    cfg = bridge_config(ehr.base_url, store_url=f"sqlite+aiosqlite:///{db}",
                        endpoint={"max_concurrency": 4}, rules={"oldest_record_days": 36500})
    settings = settings_from_dict(cfg)        # in-process
    path.write_text(to_toml(cfg))             # bridge serve / python -m bridge.exchange.run
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bridge.roles.loader import packaged_rules_dir
from bridge_dev.samples import ORG_ID, organization

RULES_DIR = packaged_rules_dir()  # the repository's config/rules, shipped in the package


def bridge_config(
    base_url: str,
    *,
    org: str = ORG_ID,
    org_name: str = "Harbor Recovery",
    store_url: str | None = None,
    jurisdiction: str = "TX",
    endpoint: Mapping[str, Any] | None = None,
    rules: Mapping[str, Any] | None = None,
    **sections: Mapping[str, Any],
) -> dict[str, Any]:
    """The configuration; ``endpoint`` adds keys to ``[endpoints.clinic]``, ``rules`` to
    ``[rules]``, and each of ``sections`` (``server``, ``api_auth``, ``outbox`` ...) is a table."""
    cfg: dict[str, Any] = {
        "default_endpoint": "clinic",
        "organization": organization(org, org_name),
        "endpoints": {"clinic": {"base_url": base_url, **(endpoint or {})}},
        "rules": {"dir": str(RULES_DIR), "jurisdiction": jurisdiction, **(rules or {})},
    }
    if store_url is not None:
        cfg["store"] = {"url": store_url}
    for name, table in sections.items():
        cfg[name] = {**cfg.get(name, {}), **table}
    return cfg


def to_toml(cfg: Mapping[str, Any]) -> str:
    """``cfg`` as TOML: top-level keys, then one ``[table]`` per nested table (arrays of tables
    for lists of tables). Strings, numbers, booleans and lists of them only."""
    lines: list[str] = []
    _table(lines, (), cfg)
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string or number is a valid TOML one


def _table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    nested = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    arrays = {k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)}
    if path and len(nested) + len(arrays) < len(table):
        lines.append(f"[{'.'.join(path)}]")
    lines += [f"{k} = {_value(v)}" for k, v in table.items() if k not in nested and k not in arrays]
    for key, sub in nested.items():
        _table(lines, (*path, key), sub)
    for key, items in arrays.items():
        for item in items:
            lines.append(f"[[{'.'.join((*path, key))}]]")
            lines += [f"{k} = {_value(v)}" for k, v in item.items()]
