"""What the exchange tells whoever watches it (the web app's metrics): deliveries by outcome,
referrals received and acted on, and policy verdicts by rule. Ids, names and codes only (no PHI).

The exchange never imports the web layer: :meth:`ExchangeService.observe` hands each job an object
with these methods (``bridge.observability.Metrics`` is one); by default nobody listens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ExchangeEvents(Protocol):
    def delivery(self, endpoint: str, outcome: str) -> None:
        """One delivery attempt ended: ``delivered``, ``retry``, ``timeout`` (a retry after a
        time-out), ``dead``."""

    def referral_received(self, endpoint: str) -> None:
        """A referral arrived in the inbox (new, or a new version of one)."""

    def referral_action(self, endpoint: str, action: str) -> None:
        """A peer acted on a referral and the EHR's Task moved (accept, decline, start ...)."""

    def verdict(self, subject: str, verdict: str, fired: Sequence[tuple[str, str]]) -> None:
        """The policy judged a ``note`` or an ``encounter``: the verdict, and (rule, severity) of
        each rule that fired."""


class NoEvents:
    def delivery(self, endpoint: str, outcome: str) -> None:
        return None

    def referral_received(self, endpoint: str) -> None:
        return None

    def referral_action(self, endpoint: str, action: str) -> None:
        return None

    def verdict(self, subject: str, verdict: str, fired: Sequence[tuple[str, str]]) -> None:
        return None


NO_EVENTS = NoEvents()
