"""``bridge check``: everything ``bridge serve`` needs, reported all at once.

    bridge check [--config FILE] [--json]     the site checks below, then every endpoint's probe
    bridge check --endpoint URL [--json]      one endpoint, no config file, no auth (bridge.clients.check)

The site checks (this module) are the config (every problem, with "did you mean" for unknown keys),
the secrets in the environment, the rule files for the jurisdiction, the store (reachable, migrated,
writable), the identity provider's JWKS and the directory file; the endpoint probes (reachability,
TLS, metadata, token, capabilities) stay in :mod:`bridge.clients.check`. A check that passes means
``serve`` starts: each site check runs the very loader ``serve`` runs.

Exit codes: 0 nothing failed (warns allowed), 1 at least one fail, 2 the config file is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING

from bridge.clients import check as endpoint_check
from bridge.config import Settings, load_settings
from bridge.errors import BridgeError, ConfigError

if TYPE_CHECKING:
    from bridge.clients.capabilities import Finding

SITE = "(bridge)"  # the row name of the site checks in the table
STORE_TIMEOUT = 15.0  # seconds: a firewalled database host would otherwise hang the check


def _finding(name: str, level: str, reason: str) -> Finding:
    from bridge.clients.capabilities import Finding

    return Finding(name, level, reason)  # type: ignore[arg-type]


def check_secrets(settings: Settings) -> list[Finding]:
    """Secrets ``serve`` reads from the environment (endpoint credentials: the endpoint probes)."""
    out = []
    for i, key in enumerate(settings.api_auth.api_keys):
        path = f"api_auth.api_keys[{i}].key_env"
        if os.environ.get(key.key_env):
            out.append(_finding("secrets", "ok", f"{path}: {key.key_env} is set"))
        else:
            out.append(_finding("secrets", "fail", f"{path}: environment variable {key.key_env} is not set"))
    env = settings.server.notification_token_env
    if env and not os.environ.get(env):
        out.append(
            _finding(
                "secrets",
                "warn",
                f"server.notification_token_env: {env} is not set: EHR notifications are refused"
                " (referrals arrive by polling only)",
            )
        )
    return out


def check_rules(settings: Settings) -> Finding:
    from bridge.roles.loader import load_policy

    try:
        policy = load_policy(settings.rules_dir(), settings.rules.jurisdiction)
    except BridgeError as exc:
        return _finding("rules", "fail", exc.message)
    return _finding("rules", "ok", f"{len(policy.describe())} rules from {', '.join(policy.files)}")


async def check_store(settings: Settings) -> Finding:
    from bridge.store import open_store
    from bridge.store.migrations import latest_version

    try:
        store = await asyncio.wait_for(open_store(settings.store.url, pool_size=1), STORE_TIMEOUT)
    except TimeoutError:
        return _finding("store", "fail", f"store.url: no answer within {STORE_TIMEOUT:.0f} s")
    except BridgeError as exc:
        return _finding("store", "fail", f"store.url: {exc.message}")
    except Exception as exc:  # an unreachable server, a refused login: named, never a traceback
        return _finding("store", "fail", f"store.url: cannot open the store ({type(exc).__name__})")
    try:
        await store.check_writable()
        await store.outbox.counts()
    except BridgeError as exc:
        return _finding("store", "fail", f"store.url: {exc.message}")
    except Exception as exc:
        return _finding("store", "fail", f"store.url: not usable ({type(exc).__name__})")
    finally:
        await store.close()
    return _finding("store", "ok", f"{store.dialect}: reachable, writable, migrations at {latest_version()}")


async def check_identity_provider(settings: Settings) -> Finding:
    from bridge.web.app import jwks_from_url
    from bridge.web.auth import Authenticator

    cfg = settings.api_auth
    if settings.identity_provider is not None:  # people sign in at an OpenID Provider
        from bridge.web.signin import OidcClient

        try:
            client = await OidcClient.open(settings)
        except ConfigError as exc:
            return _finding("identity-provider", "fail", f"{exc.path}: {exc.reason}")
        await client.close()
        return _finding(
            "identity-provider",
            "ok",
            f"OpenID Provider {settings.identity_provider.issuer}: discovery and keys read",
        )
    if not (cfg.jwks_file or cfg.jwks_url):
        # a peer app holding an API key of its own can still act; with operators' keys only,
        # nobody else can (serve's readiness says the same)
        services = any(k.role != "integrator" for k in cfg.api_keys)
        return _finding(
            "identity-provider",
            "warn" if services else "fail",
            "api_auth.jwks_url: no identity provider (jwks_url or jwks_file, issuer, audience):"
            " nobody can sign in to the inbox or call the API with a token",
        )
    try:
        jwks = await jwks_from_url(cfg.jwks_url) if cfg.jwks_url else None
        Authenticator.from_settings(settings, jwks=jwks)
    except ConfigError as exc:
        return _finding("identity-provider", "fail", f"{exc.path}: {exc.reason}")
    return _finding("identity-provider", "ok", f"JWKS loaded; issuer {cfg.issuer}, audience {cfg.audience}")


def check_directory(settings: Settings) -> Finding:
    from bridge.exchange.directory import DIRECTORY_ENV, InMemoryDirectory, directory_file

    file = directory_file(settings)
    if not file.exists():
        return _finding(
            "directory",
            "fail",
            f"no directory file at {file} (${DIRECTORY_ENV} or directory.json beside the config):"
            " every submission would name an unknown participant",
        )
    try:
        directory = InMemoryDirectory.from_file(file)
    except ConfigError as exc:
        return _finding("directory", "fail", exc.message)
    data = directory.to_dict()
    return _finding(
        "directory",
        "ok",
        f"{file}: {len(data['participants'])} participants, {len(data['peers'])} peers,"
        f" {len(data['consents'])} consents",
    )


async def site_findings(settings: Settings) -> list[Finding]:
    findings = [_finding("config", "ok", "the config file is valid")]
    findings += check_secrets(settings)
    findings.append(check_rules(settings))
    findings.append(await check_store(settings))
    findings.append(await check_identity_provider(settings))
    findings.append(check_directory(settings))
    return findings


def run(args: argparse.Namespace) -> int:
    if args.endpoint:
        return endpoint_check.run_check(args)
    from bridge.clients.probe import EndpointReport, probe_settings

    config = args.config or os.environ.get("BRIDGE_CONFIG") or "config/bridge.toml"
    settings = load_settings(config)  # every problem of the file at once: exit 2 (bridge.cli)
    site = EndpointReport(SITE, config)
    site.findings = asyncio.run(site_findings(settings))
    reports = asyncio.run(probe_settings(settings))
    failed = site.failed or any(r.failed for r in reports)
    if args.json:
        doc = {"ok": not failed, "site": site.to_dict(), "endpoints": [r.to_dict() for r in reports]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        endpoint_check.render_table([site, *reports], sys.stdout)
    return 1 if failed else 0


def register_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The parser stays :mod:`bridge.clients.check`'s; the handler becomes :func:`run`."""
    endpoint_check.register_check(sub)
    parser = sub.choices["check"]
    parser.description = (
        "Check everything `bridge serve` needs: config, secrets, rules, store, identity provider,"
        " directory, and every EHR endpoint."
    )
    parser.set_defaults(handler=run)
