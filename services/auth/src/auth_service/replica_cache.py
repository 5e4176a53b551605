"""What each auth process keeps of the database for a few seconds, and how a change empties it.

A `ReplicaCache` is keyed by what a change names (a session id, a client id). The writer
calls `announce(db, channel, keys)` inside its transaction: PostgreSQL delivers the
notification at commit to every replica's listener (`service_kit.notifications`), and this
process's own cache forgets the keys as soon as its commit returns, so that the next request
to the replica that made the change reads the database.

The bounds, whatever happens:
- every entry expires `max_age_seconds` after it was read, or sooner (`put`'s `within`);
- on PostgreSQL a cache is trusted only while its replica's listener is live (`active`): a
  lost connection empties it and sends every read to the database until it is back;
- a read that began before an invalidation and ended after it is never kept (`generation`).
On SQLite (one serving process) nothing is notified: a change made by another process (the
operator's CLI) shows within `max_age_seconds`.
"""

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.db import Database
from service_kit.notifications import notify

K = TypeVar("K")
V = TypeVar("V")

# The channels auth's replicas listen on; each payload is keys joined by commas.
REVOKED_SESSIONS = "auth_sessions_revoked"
CHANGED_CLIENTS = "auth_clients_changed"
_INFO_KEY = "replica_caches"
# PostgreSQL refuses a payload of 8000 bytes or more: 150 UUIDs are 5,550.
_KEYS_PER_NOTIFICATION = 150


class ReplicaCache(Generic[K, V]):
    """Up to `max_entries` values, least recently stored first out, each for at most
    `max_age_seconds` (0: nothing is kept); `active()` says whether it may be trusted now."""

    def __init__(
        self,
        max_age_seconds: float,
        *,
        max_entries: int,
        parse_key: Callable[[str], K],
        active: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_seconds = max_age_seconds
        self.max_entries = max_entries
        self._parse_key = parse_key
        self._active = active
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.generation = 0
        """Moves at every invalidation; read it before a database read, give it to `put`."""

    @property
    def enabled(self) -> bool:
        return self.max_age_seconds > 0 and self.max_entries > 0

    def get(self, key: K) -> V | None:
        """The value kept for `key`, if any and still good."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock() or not self._active():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V, generation: int, *, within: float | None = None) -> None:
        """Keep a value read when the cache stood at `generation`, for at most the max age,
        and at most `within` seconds (what the value itself says about how long it holds)."""
        if not self.enabled or generation != self.generation or not self._active():
            return
        lifetime = self.max_age_seconds if within is None else min(within, self.max_age_seconds)
        if lifetime <= 0:
            return
        self._entries[key] = (self._clock() + lifetime, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: K) -> None:
        """What `key` names changed (or may have)."""
        self.generation += 1
        self._entries.pop(key, None)

    def forget_payload(self, payload: str) -> None:
        """A notification's payload: keys joined by commas (anything else empties the cache)."""
        try:
            keys = [self._parse_key(part) for part in payload.split(",")]
        except ValueError:
            self.clear()
            return
        for key in keys:
            self.forget(key)

    def clear(self) -> None:
        """Forget everything (the listener lost its connection: notifications were missed)."""
        self.generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def attach(database: Database, caches: Mapping[str, ReplicaCache[Any, Any]]) -> None:
    """Let `announce`, in any database session of `database`, reach this process's caches
    (by channel) once its transaction commits."""
    database.db_session.configure(info={_INFO_KEY: dict(caches)})


async def announce(db: AsyncSession, channel: str, keys: Sequence[str]) -> None:
    """In `db`'s transaction: every replica forgets `keys` when it commits (PostgreSQL's
    notification), and so does this process's cache on `channel`, if it has one, as soon
    as the commit returns. (After a rollback, nothing is sent; should the same database
    session commit later, this process forgets them then: forgetting is always safe.)"""
    if not keys:
        return
    for start in range(0, len(keys), _KEYS_PER_NOTIFICATION):
        await notify(db, channel, ",".join(keys[start : start + _KEYS_PER_NOTIFICATION]))
    cache: ReplicaCache[Any, Any] | None = db.info.get(_INFO_KEY, {}).get(channel)
    if cache is None:
        return
    payload = ",".join(keys)

    def committed(_session: Any) -> None:
        cache.forget_payload(payload)

    event.listen(db.sync_session, "after_commit", committed, once=True)
