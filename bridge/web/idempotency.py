"""``Idempotency-Key`` on POSTs: the same key and the same request answer the first response again.

Keys are scoped to the caller (two callers may pick the same key) and bound to a fingerprint of the
request (method, path, body hash): reusing a key for a different request is an
:class:`~bridge.errors.IdempotencyConflictError`, as is sending it again while the first is running.
Submissions are also idempotent underneath (stable identifiers, conditional creates), so losing this
cache on restart costs a duplicate 202, never a duplicate resource in the EHR.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.errors import IdempotencyConflictError, InputError

KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, as the IETF draft suggests


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    response: StoredResponse | None = None


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join([method.encode(), path.encode(), body])).hexdigest()


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise InputError("Idempotency-Key", "must be 1-200 visible ASCII characters")
    return key


class IdempotencyCache:
    """Bounded in-memory map ``(caller, key) -> first response`` (LRU over ``capacity`` keys)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    async def run(
        self,
        caller: str,
        key: str,
        fp: str,
        compute: Callable[[], Awaitable[StoredResponse]],
    ) -> tuple[StoredResponse, bool]:
        """Answer from the cache or run ``compute`` once; returns ``(response, replayed)``.

        Only successful answers (2xx) are kept: a refused request may be fixed and sent again
        with the same key.
        """
        slot = (caller, check_key(key))
        entry = self._entries.get(slot)
        if entry is not None:
            if entry.fingerprint != fp:
                raise IdempotencyConflictError("Idempotency-Key was already used for a different request")
            if entry.response is None:
                raise IdempotencyConflictError("a request with this Idempotency-Key is still being processed")
            self._entries.move_to_end(slot)
            return entry.response, True
        entry = _Entry(fingerprint=fp)
        self._entries[slot] = entry
        try:
            response = await compute()
        except BaseException:
            del self._entries[slot]
            raise
        if 200 <= response.status < 300:
            entry.response = response
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        else:
            del self._entries[slot]
        return response, False
