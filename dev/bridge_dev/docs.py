"""Generated reference pages: ``docs/configuration.md`` from the config schema (``bridge.config``)
and ``docs/api.md`` from the OpenAPI document (``bridge.web.openapi``).

    python -m bridge_dev.docs            # rewrite both pages
    python -m bridge_dev.docs --check    # exit 1 when a page is out of date (tests/test_docs.py)

Keys, types, defaults and limits come from the schema; the sentence for each key comes from its
``Field(description=...)`` when it has one, else from ``DESCRIPTIONS`` below (a key missing from
both fails the check, so a new key gets documented when it is added).
"""

# ruff: noqa: E501  (DESCRIPTIONS is a table of sentences, one per config key)
from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bridge.config import Settings

ROOT = Path(__file__).resolve().parents[2]

DESCRIPTIONS: dict[str, str] = {
    "organization": "The peer organization the bridge acts for.",
    "organization.id": "Short id of the organization (letters, digits, `-`, `.`); tokens' `organization` claim must match it.",
    "organization.name": "Display name, sent to EHRs on the Organization resource.",
    "organization.npi": "The organization's NPI, when it has one.",
    "endpoints": "One table per clinic EHR, `[endpoints.<name>]`; the name is how records, consents and metrics refer to it.",
    "endpoints.*.base_url": "The EHR's FHIR R4 base URL (`http://` or `https://`).",
    "endpoints.*.patient_identifier_system": "The identifier system of the EHR's medical record numbers; participants' identifiers for this endpoint use it.",
    "endpoints.*.timeout_seconds": "Seconds to wait for an answer; a time-out counts as a failure for the circuit breaker and readiness.",
    "endpoints.*.max_concurrency": "Requests in flight at this EHR at once (a good citizen keeps it low; the client itself no longer slows down at 32 connections, see the README's Performance section).",
    "endpoints.*.rate_limit_per_second": "Upper bound on requests per second to this EHR (none by default).",
    "endpoints.*.retry_max_seconds": "Time budget for one call's retries (the outbox retries longer outages durably).",
    "endpoints.*.breaker_failures": "Consecutive failures (time-outs included) that open the circuit breaker.",
    "endpoints.*.breaker_reset_seconds": "Seconds an open breaker waits before letting one trial request through.",
    "endpoints.*.verify_tls": "Verify the EHR's TLS certificate (turn off only for a test EHR).",
    "endpoints.*.poll_interval_seconds": "Poll for referrals this often (hourly recommended; down to 60 s where the EHR allows it, warned about below 15 minutes); a ping on /fhir/notify polls at once.",
    "endpoints.*.subscribe": "Ask the EHR for a referral subscription (Subscriptions Backport, else R4 criteria) when it offers one.",
    "endpoints.*.headers": 'Headers sent with every request to this EHR (e.g. `Prefer = "handling=strict"`); a header that looks like a credential is refused: secrets stay in `auth`.',
    "endpoints.*.notify_requester": "When a note for a referral is delivered, send the referring clinician a Communication saying it arrived (no note content).",
    "endpoints.*.auth": "How the bridge authenticates to this EHR.",
    "endpoints.*.auth.type": "`none`, `bearer` (a static token) or `smart` (SMART Backend Services, a signed JWT assertion).",
    "endpoints.*.auth.token_env": "bearer: the environment variable that holds the token.",
    "endpoints.*.auth.client_id": "smart: the client id the EHR registered for the bridge.",
    "endpoints.*.auth.private_key_file": "smart: PEM file of the private key (RSA for RS384, EC P-384 for ES384); `bridge init` writes one.",
    "endpoints.*.auth.private_key_env": "smart: environment variable holding the PEM instead of a file.",
    "endpoints.*.auth.kid": "smart: the key id registered with the public key (the JWKS `kid`).",
    "endpoints.*.auth.alg": "smart: signing algorithm of the client assertion.",
    "endpoints.*.auth.scope": "smart: the scopes requested.",
    "endpoints.*.auth.token_url": "smart: the token endpoint; else read from the EHR's `.well-known/smart-configuration`.",
    "default_endpoint": "The endpoint for records that name none (after the referral's source and the participant's home endpoint).",
    "identity_provider": "The OpenID Provider people sign in with (authorization code + PKCE); the bridge is its client. Without it the inbox keeps a token form for development.",
    "identity_provider.issuer": "The provider's issuer URL; discovery (`/.well-known/openid-configuration`) and its keys are read at start-up and by `bridge check`.",
    "identity_provider.client_id": "The client id the provider registered for the bridge's inbox (not the API audience: an ID token is never an API token).",
    "identity_provider.client_secret_env": "Environment variable holding the client secret.",
    "identity_provider.client_secret_file": "File holding the client secret (instead of the environment).",
    "identity_provider.redirect_url": "Where the provider sends the browser back; default `{server.public_url}/inbox/signin/callback`.",
    "identity_provider.scopes": "Scopes asked for at sign-in; the ID token must carry `role`, `organization` and, for peers, `practitioner_id`.",
    "identity_provider.session_hours": "Absolute lifetime of a browser session.",
    "identity_provider.idle_minutes": "A session unused this long ends.",
    "identity_provider.timeout_seconds": "Seconds to wait for the provider's discovery, keys and token answers.",
    "identity_provider.verify_tls": "Verify the provider's TLS certificate (turn off only for a test provider).",
    "alerts": "Who is told, beside the supervisor's queue badge, when a note is held for a risk of harm.",
    "alerts.risk_webhook_url": "POSTed `{event, submission_id, organization, rules, at}` (ids and rule names only, never note text or names) when a note is held for a risk of harm; a failing webhook is audited and never fails the submission.",
    "alerts.risk_webhook_token_env": "Environment variable holding a token sent as `Authorization: Bearer <token>` to the webhook.",
    "alerts.timeout_seconds": "Seconds to wait for the webhook to answer.",
    "server": "The bridge's own HTTP listener.",
    "server.host": "Listen address (`0.0.0.0` in a container).",
    "server.port": "Listen port.",
    "server.public_url": "How EHRs and browsers reach the bridge (`https://...`): the notification URL given to subscriptions, and Secure cookies.",
    "server.notification_token_env": "Environment variable with the bearer token EHRs send on notifications (compared in constant time).",
    "server.trust_forwarded_proto": "Trust `X-Forwarded-Proto` (only behind a TLS proxy that sets it itself).",
    "store": "Where the outbox, inbox and audit log live.",
    "store.url": "`sqlite+aiosqlite:///path` (one instance; a relative path is beside the config file) or `postgresql+asyncpg://user@host/db` (several instances; the password from `PGPASSWORD`).",
    "store.lease_seconds": "How long a claimed delivery is held by one instance before another may take it over.",
    "outbox": "Delivery retries.",
    "outbox.max_attempts": "Attempts before an item is dead-lettered.",
    "outbox.base_backoff_seconds": "First retry delay (exponential backoff with jitter).",
    "outbox.max_backoff_seconds": "Longest retry delay.",
    "outbox.workers": "Deliveries in flight per instance (per endpoint, at most its `max_concurrency`).",
    "outbox.validate_fhir": "Check every Bundle against the R4B models before sending it (the tests and golden files do; off by default, as it costs more CPU than the rest of a delivery).",
    "api_auth": "How callers of the bridge's API and pages authenticate.",
    "api_auth.issuer": "The identity provider's issuer (`iss` of its tokens).",
    "api_auth.audience": "The audience the tokens must carry (`aud`).",
    "api_auth.jwks_file": "The identity provider's public keys (JWKS) as a file.",
    "api_auth.jwks_url": "The identity provider's JWKS URL, fetched at start-up.",
    "api_auth.peers_see_only_own": "A peer sees unassigned referrals and their own, never a colleague's.",
    "api_auth.api_keys": "Service accounts, `[[api_auth.api_keys]]`: the key itself lives in the environment.",
    "api_auth.api_keys[].name": "The account's name (in the audit log).",
    "api_auth.api_keys[].key_env": "Environment variable holding the key.",
    "api_auth.api_keys[].role": "The role the key acts with (`integrator` for operators).",
    "api_auth.api_keys[].organization": "The organization the key acts for.",
    "rules": "The scope-of-practice and privacy rules.",
    "rules.dir": "A folder of rule files (`default.toml` + `<xx>.toml` overlays); unset: the rules shipped with the bridge.",
    "rules.jurisdiction": "Two-letter state code of the overlay to apply (`TX`, `VA`, `NJ`, `MN` ship).",
    "rules.oldest_record_days": "A session or note older than this is refused (a typo'd year, not late documentation).",
}

_SKIP = {"base_dir"}  # set by the loader, not written in the file


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a!r}`".replace("'", '"') for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is dict:
        return f"table of {_type_name(get_args(annotation)[1])}"
    if origin is list:
        return f"array of {_type_name(get_args(annotation)[0])}"
    if hasattr(annotation, "__metadata__"):
        return _type_name(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, str(annotation))


def _limits(info: FieldInfo) -> str:
    out = []
    for m in info.metadata:
        for attr, sign in (
            ("ge", ">="),
            ("gt", ">"),
            ("le", "<="),
            ("lt", "<"),
            ("min_length", "min length"),
        ):
            value = getattr(m, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        pattern = getattr(m, "pattern", None)
        if pattern:
            out.append(f"pattern `{pattern}`")
    return ", ".join(out)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return ""
    if info.default is None or info.default is PydanticUndefined:
        return ""
    value = info.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The table model inside a field, and how its key path continues (``.*``, ``[]``)."""
    origin = get_origin(annotation)
    if origin is dict:
        inner, _ = _model_of(get_args(annotation)[1])
        return inner, ".*"
    if origin is list:
        inner, _ = _model_of(get_args(annotation)[0])
        return inner, "[]"
    if origin in (Union, types.UnionType):
        for a in get_args(annotation):
            inner, suffix = _model_of(a)
            if inner is not None:
                return inner, suffix
        return None, ""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    return None, ""


def config_rows(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str, str, str]]:
    """(key, type, default, limits, description) for every key of the schema, tables first."""
    rows = []
    nested = []
    for name, info in model.model_fields.items():
        if name in _SKIP:
            continue
        key = f"{prefix}{name}"
        description = info.description or DESCRIPTIONS.get(key, "")
        inner, suffix = _model_of(info.annotation)
        if inner is not None:
            nested.append((key, suffix, inner, description, info))
            continue
        rows.append((key, _type_name(info.annotation), _default(info), _limits(info), description))
    for key, suffix, inner, description, info in nested:
        kind = "array of tables" if suffix == "[]" else "table per name" if suffix == ".*" else "table"
        rows.append((key, kind, "required" if info.is_required() else "", _limits(info), description))
        rows += config_rows(inner, f"{key}{suffix}.")
    return rows


def configuration_md() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- generated by `python -m bridge_dev.docs` from the config schema (bridge/config.py); "
        "tests/test_docs.py checks it is current: edit DESCRIPTIONS in dev/bridge_dev/docs.py, not this page -->",
        "",
        "The bridge reads one TOML file (`bridge serve --config FILE`, else `$BRIDGE_CONFIG`, else",
        "`config/bridge.toml`). Every problem in it is reported at once with its key path, and an unknown",
        "key with the closest known one (`endpoints.clinic.max_concurency: unknown key (did you mean",
        "max_concurrency?)`). Relative paths resolve against the file's folder. Secrets never go in the",
        "file: `*_env` keys name the environment variable that holds one. `bridge init DIR` writes a",
        "commented example; `bridge check` checks everything `bridge serve` needs.",
        "",
        "`endpoints.*` is one table per endpoint name (`[endpoints.clinic]`); `api_auth.api_keys[]` is an",
        "array of tables (`[[api_auth.api_keys]]`).",
        "",
        "| key | type | default | limits | meaning |",
        "|---|---|---|---|---|",
    ]
    for key, kind, default, limits, description in config_rows():
        lines.append(f"| `{key}` | {kind} | {default} | {limits} | {description} |")
    lines += [
        "",
        "Environment variables read besides the `*_env` keys: `BRIDGE_CONFIG` (the config file),",
        "`BRIDGE_DIRECTORY` (the directory file; default `directory.json` beside the config), `PGPASSWORD`",
        "(the PostgreSQL password, read by the driver).",
        "",
    ]
    return "\n".join(lines)


def api_md() -> str:
    from bridge.web.openapi import build_openapi

    doc = build_openapi()
    lines = [
        "# HTTP API reference",
        "",
        "<!-- generated by `python -m bridge_dev.docs` from the OpenAPI document (bridge/web/routes.py); "
        "tests/test_docs.py checks it is current -->",
        "",
        f"{doc['info']['description']} The running bridge serves the full OpenAPI {doc['openapi']}",
        "document at `GET /api/openapi.json` (schemas of every body and answer). Errors are JSON",
        "`{code, message, request_id, ...}` with the stable codes listed per status below. Pages",
        "(`/inbox`, `/ops`) and static files are HTML, not part of the document.",
        "",
        "Authentication: `Authorization: Bearer <JWT>` from the organization's identity provider, or",
        "`X-API-Key` (service accounts, `[[api_auth.api_keys]]`); the notification endpoint takes the",
        "token named by `server.notification_token_env`.",
        "",
    ]
    schemes = {"bearer": "bearer JWT", "apiKey": "X-API-Key", "notifyToken": "notification token"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            lines.append(f"## `{method.upper()} {path}`")
            lines.append("")
            lines.append(op.get("summary", ""))
            if op.get("description"):
                lines += ["", op["description"]]
            security = sorted({schemes.get(k, k) for s in op.get("security", []) for k in s})
            lines += ["", f"Auth: {', '.join(security) if security else 'none'}."]
            body = op.get("requestBody", {}).get("content", {})
            for ctype, content in body.items():
                ref = content.get("schema", {}).get("$ref", "")
                lines.append(f"Body: `{ctype}`" + (f" ({ref.rsplit('/', 1)[-1]})" if ref else "") + ".")
            lines += ["", "| status | meaning |", "|---|---|"]
            for status, resp in op.get("responses", {}).items():
                text = " ".join(str(resp.get("description", "")).split()).replace("|", "\\|")
                lines.append(f"| {status} | {text} |")
            lines.append("")
    return "\n".join(lines)


PAGES = {"docs/configuration.md": configuration_md, "docs/api.md": api_md}


def missing_descriptions() -> list[str]:
    return [key for key, _, _, _, description in config_rows() if not description]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write (or --check) the generated reference pages")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    stale = []
    for rel, render in PAGES.items():
        text = render()
        path = ROOT / rel
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
        else:
            path.write_text(text)
    for rel in stale:
        print(f"{rel} is out of date: run python -m bridge_dev.docs", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
