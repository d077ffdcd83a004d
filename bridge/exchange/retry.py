"""The outbox retry schedule, pure: the caller passes the attempt number and the randomness."""

from __future__ import annotations


def backoff_seconds(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential (``base * 2**(attempt-1)``, at most ``cap``) with "equal jitter": half fixed, half
    random (``jitter`` in [0, 1)), so instances that failed together do not retry together. A
    server's ``Retry-After`` is a floor, never shortened by jitter.
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    exp = min(cap, base * 2.0 ** min(attempt - 1, 32))
    delay = exp / 2 + (exp / 2) * min(max(jitter, 0.0), 1.0)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def give_up(attempts: int, max_attempts: int) -> bool:
    """True when ``attempts`` (already made) used up the budget."""
    return attempts >= max_attempts
