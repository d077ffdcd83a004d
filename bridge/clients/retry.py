"""The retry policy (tenacity): which requests are retried, how long to wait, when to give up.

- Only idempotent requests are retried: GET, update with ``If-Match``, conditional create, and
  transactions whose entries are all conditional. A non-idempotent request is resent only when it
  certainly never reached the server (the connection was never made): resending it after a lost
  answer could create a duplicate.
- Only :class:`~bridge.errors.RetryableError` is retried (429, 502/503/504, transport failures),
  except :class:`~bridge.errors.CircuitOpenError`: our own breaker said stop, so the caller hears it.
- Waits grow exponentially with "equal jitter" (:func:`backoff_seconds`, AWS architecture blog,
  "Exponential Backoff And Jitter"); a server's ``Retry-After`` is honored as the lower bound of
  the wait. The outbox schedules its retries with the same function: one backoff policy.
- The whole call, waits included, stays within ``max_seconds``: a wait that would cross it ends
  the retrying and the last error goes to the caller (a ``Retry-After`` longer than the budget is
  therefore not slept on: the outbox can schedule it).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay

from bridge.clients.status import never_sent
from bridge.errors import CircuitOpenError, RetryableError, ServerUnavailableError, ThrottledError


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based). Pure: the caller passes
    the randomness (``jitter`` in [0, 1)).

    Exponential (``base * 2**(attempt-1)``, at most ``cap``) with "equal jitter": half fixed, half
    random, so callers that failed together do not retry together. A server's ``Retry-After`` is
    a floor, never shortened by jitter.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    exp = min(cap, base * 2.0 ** min(attempt - 1, 32))
    delay = exp / 2 + (exp / 2) * min(max(jitter, 0.0), 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def _retry_after(exc: BaseException | None) -> float | None:
    if isinstance(exc, ThrottledError | ServerUnavailableError):
        return exc.retry_after
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How one endpoint's requests are retried. ``sleep`` is injectable so tests see the waits."""

    max_seconds: float = 60.0
    max_attempts: int = 8
    initial_wait: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def should_retry(self, exc: BaseException, *, idempotent: bool) -> bool:
        if not isinstance(exc, RetryableError) or isinstance(exc, CircuitOpenError):
            return False
        return idempotent or never_sent(exc)

    def wait_seconds(self, state: RetryCallState) -> float:
        outcome = state.outcome
        return backoff_seconds(
            state.attempt_number,
            base=self.initial_wait,
            cap=self.max_wait,
            jitter=self.jitter(),
            retry_after=_retry_after(outcome.exception() if outcome is not None else None),
        )

    def retrying(self, *, idempotent: bool) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(lambda exc: self.should_retry(exc, idempotent=idempotent)),
            wait=self.wait_seconds,
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_seconds),
            sleep=self.sleep,
            reraise=True,
        )
