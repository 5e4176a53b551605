"""Each replica's cache of `GET /users/me` answers, so that the hot read skips the database.

What it keeps is the answer itself (the profile's JSON bytes), per account. Every write of a
profile empties its entry on its own replica once committed (read-your-writes for the
caller) and, through a PostgreSQL notification sent in the write's transaction
(`service_kit.notifications`), on every other replica as soon as the commit is delivered.
On PostgreSQL the cache is used only while this replica's listener is live: a lost
connection empties it and sends every read to the database until the listener is back.
On SQLite there is one process, and the writer's own invalidation is all there is.

A read that began before an invalidation may end after it with the old row: `put` refuses any
answer read before the latest invalidation (its `generation`), so a stale row is never kept.
Entries also expire after `max_age_seconds`, a bound even if a notification went astray.
"""

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

CHANNEL = "users_profile_changed"


class ProfileCache:
    """Up to `max_entries` answers, least recently stored first out; `active()` says whether
    it may be trusted now (the listener is live)."""

    def __init__(
        self,
        max_entries: int,
        max_age_seconds: float,
        active: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self._active = active
        self._clock = clock
        self._entries: OrderedDict[uuid.UUID, tuple[float, bytes]] = OrderedDict()
        self.generation = 0
        """Moves at every invalidation; read it before a database read, give it to `put`."""

    def get(self, account: uuid.UUID) -> bytes | None:
        """The cached answer for the account, if any and still good."""
        entry = self._entries.get(account)
        if entry is None:
            return None
        expires, body = entry
        if expires < self._clock() or not self._active():
            del self._entries[account]
            return None
        return body

    def put(self, account: uuid.UUID, body: bytes, generation: int) -> None:
        """Keep an answer read from the database when the cache stood at `generation`."""
        if not self.max_entries or generation != self.generation or not self._active():
            return
        self._entries[account] = (self._clock() + self.max_age_seconds, body)
        self._entries.move_to_end(account)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, account: uuid.UUID) -> None:
        """The account's profile changed (or may have)."""
        self.generation += 1
        self._entries.pop(account, None)

    def invalidate_payload(self, payload: str) -> None:
        """A notification's payload: the account id (anything else empties the cache)."""
        try:
            account = uuid.UUID(payload)
        except ValueError:
            self.clear()
            return
        self.invalidate(account)

    def clear(self) -> None:
        """Forget everything (the listener lost its connection: notifications were missed)."""
        self.generation += 1
        self._entries.clear()
