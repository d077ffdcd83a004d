"""Issue 10, Low: API-key guessing (~770/s) was neither throttled nor logged above info.

On the real app (sandbox EHR, SQLite): every failed sign-in is logged at WARNING with the caller's
address and the kind of credential, never the credential; past the limit the address is answered
429 ``too_many_failures`` with ``Retry-After``, even with a good key, until the window has room."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bridge_dev.sandbox import Sandbox
from tests.web.stack import serve, write_stack

GUESS = "guess-0123456789abcdef"


async def test_guessing_api_keys_is_logged_and_throttled(
    sandbox_ehr: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack = write_stack(sandbox_ehr, tmp_path / "b", port=0)
    async with serve(stack) as client:
        good = {"X-API-Key": stack.env["BRIDGE_TEST_PEER_KEY"]}
        assert (await client.get("/api/v1/referrals", headers=good)).status == 200
        from bridge.web.keys import AUTH_THROTTLE

        limit = client.app[AUTH_THROTTLE].limit
        with caplog.at_level(logging.WARNING, logger="bridge.web.auth"):
            for n in range(limit):
                resp = await client.get("/api/v1/referrals", headers={"X-API-Key": f"{GUESS}-{n}"})
                assert resp.status == 401, n
        failures = [r for r in caplog.records if r.getMessage() == "authentication failed"]
        assert len(failures) == limit and all(r.levelno == logging.WARNING for r in failures)
        last = failures[-1].__dict__
        assert last["source"] == "127.0.0.1" and last["credential"] == "api_key"
        assert GUESS not in caplog.text  # the guess itself is never logged

        refused = await client.get("/api/v1/referrals", headers=good)  # even the right key, for now
        assert refused.status == 429
        body = await refused.json()
        assert body["code"] == "too_many_failures" and int(refused.headers["Retry-After"]) > 0
        login = await client.post("/inbox/login", data={"credential": stack.env["BRIDGE_TEST_PEER_KEY"]})
        assert login.status == 429  # the sign-in page counts the same failures
        assert (await client.get("/health")).status == 200  # unauthenticated routes are not affected


def test_the_window_empties_and_sources_count_apart() -> None:
    from bridge.errors import NotAuthenticatedError, TooManyFailuresError
    from bridge.web.throttle import FailedAuthThrottle

    now = [0.0]
    throttle = FailedAuthThrottle(limit=2, window=60.0, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("client-a", "api_key", NotAuthenticatedError("unknown API key"))
    with pytest.raises(TooManyFailuresError) as exc:
        throttle.check("client-a")
    assert 0 < exc.value.retry_after <= 61
    throttle.check("client-b")  # another address is not affected
    now[0] = 61.0
    throttle.check("client-a")  # the window moved on
