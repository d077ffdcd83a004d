"""Failed sign-ins per source address: a guessing caller is slowed down and shows up in the logs.

Every failed authentication (an unknown API key, a bad token) counts against the caller's address in
a sliding window; past ``limit`` failures in ``window`` seconds the address is answered 429
``too_many_failures`` (with ``Retry-After``) until the window has room again, whatever it sends.
Each failure is logged at WARNING with the address and the credential kind, never the credential.
Per process and in memory: a restart forgets, and several bridge instances count apart.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from bridge.errors import NotAuthenticatedError, TooManyFailuresError

log = logging.getLogger("bridge.web.auth")


class FailedAuthThrottle:
    def __init__(
        self,
        *,
        limit: int = 100,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._max_sources = max_sources
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, source: str) -> deque[float]:
        stamps = self._failures.get(source)
        if stamps is None:
            return deque()
        cutoff = self._clock() - self.window
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        if not stamps:
            del self._failures[source]
        return stamps

    def check(self, source: str) -> None:
        """Refuse a source that failed ``limit`` times in the window, before its credential is read."""
        stamps = self._recent(source)
        if len(stamps) >= self.limit:
            wait = max(1, int(stamps[0] + self.window - self._clock()) + 1)
            raise TooManyFailuresError(
                f"too many failed sign-ins from this address; try again in {wait} s", retry_after=wait
            )

    def failed(self, source: str, kind: str, exc: NotAuthenticatedError) -> None:
        if source not in self._failures and len(self._failures) >= self._max_sources:
            self._failures.pop(next(iter(self._failures)))  # the oldest source gives way
        stamps = self._failures.setdefault(source, deque())
        stamps.append(self._clock())
        log.warning(
            "authentication failed",
            extra={"source": source, "credential": kind, "failures": len(stamps), "reason": exc.code},
        )
