"""Telling someone when a note is held for a risk of harm: the configured webhook
(``[alerts] risk_webhook_url``) gets ids and rule names (never note text, never names), and the
attempt is on record. The supervisor's queue shows the same notes first, with a badge.

A webhook that fails or is slow (``timeout_seconds``) does not fail the submission: the note is
held and in the queue either way; the failure is logged (no PHI) and audited.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bridge.errors import ConfigError
from bridge.exchange.context import ExchangeContext
from bridge.exchange.views import Actor, Submission

log = logging.getLogger("bridge.exchange.alerts")


class RiskAlerts:
    def __init__(self, ctx: ExchangeContext, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.ctx = ctx
        self._transport = transport

    def risk_rules(self, sub: Submission) -> list[str]:
        """The rules holding ``sub`` that an escalation resolves (a risk of harm)."""
        return [
            str(v.get("rule"))
            for v in sub.hold_reasons
            if v.get("severity") == "hold"
            and self.ctx.policy.satisfied_by(str(v.get("rule"))) == "escalation"
        ]

    async def note_held(self, sub: Submission, *, actor: Actor) -> None:
        """Called with every held note: for a risk hold, POST the configured webhook."""
        rules = self.risk_rules(sub)
        alerts = self.ctx.settings.alerts
        if not rules or not alerts.risk_webhook_url:
            return
        body: dict[str, Any] = {
            "event": "note.held-for-risk",
            "submission_id": sub.id,
            "organization": sub.organization,
            "rules": rules,
            "at": self.ctx.clock().isoformat(),
        }
        outcome, detail = "ok", dict[str, Any](rules=rules)
        try:
            headers = {}
            if alerts.risk_webhook_token_env:
                headers["Authorization"] = "Bearer " + self.ctx.settings.secret(
                    alerts.risk_webhook_token_env, "alerts.risk_webhook_token_env"
                )
            async with httpx.AsyncClient(timeout=alerts.timeout_seconds, transport=self._transport) as client:
                resp = await client.post(alerts.risk_webhook_url, json=body, headers=headers)
            detail["status"] = resp.status_code
            if resp.status_code >= 300:
                outcome = "failed"
        except ConfigError as exc:  # the token's variable unset: the note is held all the same
            outcome, detail["error"] = "failed", exc.code
        except httpx.HTTPError as exc:
            outcome, detail["error"] = "failed", type(exc).__name__
        if outcome != "ok":
            log.warning("risk alert not delivered", extra={"submission_id": sub.id, "event": "alert.risk"})
        await self.ctx.audit(actor, "alert.risk", sub.id, outcome=outcome, detail=detail)
