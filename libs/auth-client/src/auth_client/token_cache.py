"""Tokens that already passed verification, so a repeat costs a hash and a lookup.

Keyed by a SHA-256 of the token (the token itself is never kept), bounded, least recently
used out first. An entry never outlives its token's `exp`; the verifier also drops it once its
key leaves the key set. Only successes are ever stored.
"""

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from auth_client.principal import Principal


def token_digest(token: str) -> bytes:
    """The cache key of a token: its SHA-256, so a memory dump holds no usable bearer token."""
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokenCache:
    """A bounded LRU of verified access tokens."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, Principal] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Principal | None:
        """The verified token, unless absent or expired (an expired entry is dropped)."""
        digest = token_digest(token)
        principal = self._entries.get(digest)
        if principal is None:
            return None
        if self._clock() >= principal.expires_at:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return principal

    def put(self, token: str, principal: Principal) -> None:
        """Remember a token that verification accepted."""
        if self._max_entries <= 0:
            return
        digest = token_digest(token)
        self._entries[digest] = principal
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
