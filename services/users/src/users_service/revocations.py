"""Every replica's deny list, loaded from the shared `deny_entries` table.

Events reach one replica (the one the publisher's POST lands on), which writes their deny
entries to the database (`events.py`); every replica must refuse the tokens. So each one
reloads the whole table into a fresh `DenyList` and swaps it into its verifier:

- at once when told: on PostgreSQL a listener connection (LISTEN) hears the NOTIFY that
  the writing transaction sent at its commit;
- and every DENY_LIST_RELOAD_SECONDS whatever happens: the only way on SQLite, and what
  covers a notification lost while the listener reconnects.

The table holds only unexpired entries worth keeping (a replica purges the rest now and
then), at most one per revoked session or account for one token lifetime: small.
"""

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Literal

import structlog
from sqlalchemy import delete, select

from auth_client import DenyList, Revocation, TokenVerifier
from auth_client.revocation_events import apply
from service_kit.db import Database
from users_service.events import DENY_LIST_CHANNEL
from users_service.models import DenyEntry

PURGE_EVERY_SECONDS = 60.0
LISTENER_RETRY_SECONDS = 1.0

log = structlog.stdlib.get_logger(__name__)


async def load(database: Database, max_entries: int, now: datetime) -> DenyList:
    """A deny list of the table's unexpired entries."""
    deny_list = DenyList(max_entries)
    async with database.db_session() as db:
        rows = await db.execute(
            select(DenyEntry.kind, DenyEntry.key, DenyEntry.expires_at).where(
                DenyEntry.expires_at > now
            )
        )
        for kind, key, expires_at in rows:
            entry_kind: Literal["session", "subject"] = (
                "session" if kind == "session" else "subject"
            )
            apply(deny_list, Revocation(entry_kind, key, expires_at.timestamp()))
    return deny_list


async def purge_expired(database: Database, now: datetime) -> None:
    """Delete the entries every token of which has expired."""
    async with database.db_session() as db:
        await db.execute(delete(DenyEntry).where(DenyEntry.expires_at <= now))
        await db.commit()


class DenyListFeed:
    """Keeps `verifier.deny_list` equal to the table, within the reload interval (or a
    notification's delay, on PostgreSQL)."""

    def __init__(
        self,
        database: Database,
        verifier: TokenVerifier,
        *,
        reload_seconds: float,
        max_entries: int,
    ) -> None:
        self.database = database
        self.verifier = verifier
        self.reload_seconds = reload_seconds
        self.max_entries = max_entries
        self._wake = asyncio.Event()
        self._last_purge = 0.0
        self._changes = 0
        self._stopping = False

    def apply_now(self, revocations: list[Revocation]) -> None:
        """This replica's own list, before the next reload (the events it just stored)."""
        for revocation in revocations:
            apply(self.verifier.deny_list, revocation)
        self._changes += 1
        # A reload already reading may have read the table before these were committed.
        self._wake.set()

    async def reload(self) -> None:
        now = datetime.now(UTC)
        changes = self._changes
        deny_list = await load(self.database, self.max_entries, now)
        if changes != self._changes:
            return  # read too early: the next round (woken above) reads again
        self.verifier.deny_list = deny_list
        if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            await purge_expired(self.database, now)

    async def run(self) -> None:
        """Reload on every notification and every interval, until `stop`."""
        listener = None
        if self.database.engine.dialect.name == "postgresql":
            listener = asyncio.create_task(self._listen())
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self.reload()
                except Exception as exc:  # the database may be down: keep the list we have
                    log.warning("deny_list_not_reloaded", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.reload_seconds)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    def stop(self) -> None:
        """End `run` after the reload in progress, if any: a query cancelled halfway can
        leave its pooled connection unusable, and the pool's disposal waiting on it."""
        self._stopping = True
        self._wake.set()

    async def _listen(self) -> None:
        """LISTEN on a connection held for it; again after it is lost."""
        while True:
            try:
                await self._listen_once()
            except Exception as exc:
                log.warning("deny_list_listener_lost", error=type(exc).__name__)
            await asyncio.sleep(LISTENER_RETRY_SECONDS)

    async def _listen_once(self) -> None:
        # A connection of its own, not the pool's: terminated at once, whatever it is doing.
        import asyncpg  # only where the listener runs: PostgreSQL (SQLite's process never needs it)

        dsn = self.database.engine.url.set(drivername="postgresql")
        connection = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=5)
        try:
            lost = asyncio.Event()
            connection.add_termination_listener(lambda *_: lost.set())
            await connection.add_listener(DENY_LIST_CHANNEL, lambda *_: self._wake.set())
            self._wake.set()  # anything missed while not listening
            await lost.wait()
        finally:
            connection.terminate()
