from __future__ import annotations

import pytest

from bridge.clients.retry import backoff_seconds
from bridge.errors import InputError
from bridge.exchange.routing import partition_key, route


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [(1, 0.0, 1.0), (1, 0.999999, 2.0), (2, 0.0, 2.0), (3, 0.5, 6.0), (20, 0.0, 30.0), (20, 1.0, 60.0)],
)
def test_backoff_is_exponential_capped_and_jittered(attempt: int, jitter: float, expected: float) -> None:
    assert backoff_seconds(attempt, base=2, cap=60, jitter=jitter) == pytest.approx(expected, rel=1e-5)


def test_retry_after_is_a_floor() -> None:
    assert backoff_seconds(1, base=2, cap=60, jitter=0, retry_after=30) == 30
    assert backoff_seconds(6, base=2, cap=60, jitter=1, retry_after=5) == 60
    with pytest.raises(ValueError):
        backoff_seconds(0, base=1, cap=1, jitter=0)


CONFIGURED = {"north", "south", "main"}


@pytest.mark.parametrize(
    ("explicit", "referral", "home", "default", "expected"),
    [
        ("north", "south", "main", "main", "north"),
        (None, "south", "north", "main", "south"),
        (None, None, "north", "main", "north"),
        (None, None, None, "main", "main"),
    ],
)
def test_route_precedence(explicit, referral, home, default, expected) -> None:
    got = route(
        explicit=explicit,
        referral_endpoint=referral,
        home_endpoint=home,
        default_endpoint=default,
        configured=CONFIGURED,
    )
    assert got == expected


def test_route_errors_name_the_field() -> None:
    with pytest.raises(InputError) as exc:
        route(
            explicit=None,
            referral_endpoint=None,
            home_endpoint="west",
            default_endpoint="main",
            configured=CONFIGURED,
        )
    assert exc.value.field == "participant.home_endpoint"
    with pytest.raises(InputError) as exc:
        route(
            explicit=None,
            referral_endpoint=None,
            home_endpoint=None,
            default_endpoint=None,
            configured=CONFIGURED,
        )
    assert exc.value.field == "endpoint"
    assert partition_key("p1", "north") == "p1@north"
