"""Good citizenship toward one endpoint: a rate limiter and a circuit breaker.

Concurrency is capped by an ``asyncio.Semaphore`` in the client; these two are the rest. Both take
their clock (monotonic seconds) as a parameter so tests can drive them without waiting.

Circuit breaker (https://martinfowler.com/bliki/CircuitBreaker.html): ``closed`` counts consecutive
failures that say the server is struggling (transport errors, 429, 5xx); after ``failures`` of them it
goes ``open`` and refuses calls with :class:`~bridge.errors.CircuitOpenError` for ``reset_seconds``;
then ``half-open`` lets one trial call through: success closes it, failure opens it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from bridge.errors import CircuitOpenError

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True)
class BreakerStatus:
    """What the breaker reports: state, consecutive failures, seconds until it half-opens (if open)."""

    state: BreakerState
    consecutive_failures: int
    opens_total: int
    retry_in_seconds: float | None


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures: int = 5,
        reset_seconds: float = 30.0,
        endpoint: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.endpoint = endpoint
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.opens_total = 0

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_seconds:
            return "half-open"
        return self._state

    def status(self) -> BreakerStatus:
        state = self.state
        retry_in = None
        if state == "open":
            retry_in = max(0.0, self.reset_seconds - (self._clock() - self._opened_at))
        return BreakerStatus(state, self._consecutive, self.opens_total, retry_in)

    def before_call(self) -> None:
        """Raise CircuitOpenError unless a call may go out now (one trial call while half-open)."""
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self._trial_in_flight:
            self._state = "half-open"
            self._trial_in_flight = True
            return
        retry_in = self.status().retry_in_seconds
        when = f"; next trial in {retry_in:.1f}s" if retry_in is not None else "; a trial call is in flight"
        where = f"{self.endpoint}: " if self.endpoint else ""
        raise CircuitOpenError(
            f"{where}circuit open after {self._consecutive} consecutive failures{when}",
            endpoint=self.endpoint,
        )

    def record_success(self) -> None:
        self._state = "closed"
        self._consecutive = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._consecutive += 1
        if self._state == "half-open" or self._consecutive >= self.failures:
            if self._state != "open":
                self.opens_total += 1
            self._state = "open"
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release_trial(self) -> None:
        """A trial call that was abandoned (cancelled): says nothing; the next call may try."""
        self._trial_in_flight = False

    def record_neutral(self) -> None:
        """A call that says nothing about the server's health (e.g. a 404): frees the trial slot."""
        if self._state == "half-open":
            self.record_success()


class RateLimiter:
    """Token bucket: at most ``rate`` requests per second on average, bursts up to ``burst``."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: waiters take tokens in arrival order
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await self._sleep((1 - self._tokens) / self.rate)
