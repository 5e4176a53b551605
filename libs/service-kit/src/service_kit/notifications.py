"""Tell every replica of a service that something changed: PostgreSQL's LISTEN/NOTIFY.

A writer calls `notify(db, channel, payload)` inside its transaction: PostgreSQL delivers the
notification to every listening connection when (and only if) the transaction commits. Each
replica runs one `NotificationListener`: a connection of its own (not the pool's) that
LISTENs on the channels its handlers subscribed to, and hands each payload to them.

Notifications are not stored: those sent while a listener is disconnected are lost to it. So
a listener says whether it is `live`, and calls its `on_reset` handlers when it loses its
connection and again when it has one back; what a replica keeps from the notifications (a
cache, a deny list) must be emptied there, or not trusted while the listener is not live.
A connection that dies silently (no FIN, a partitioned network) is noticed by a keep-alive
query every `keepalive_seconds`.

On SQLite (one process: replicas need PostgreSQL) there is nobody to tell: `notify` does
nothing and a listener is never started; the writer's own replica updates itself directly.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from sqlalchemy import func as sql
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import AsyncSession

log = structlog.stdlib.get_logger(__name__)

Handler = Callable[[str], None]


async def notify(db: AsyncSession, channel: str, payload: str) -> None:
    """Queue a notification in `db`'s transaction: delivered on commit (PostgreSQL only)."""
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(select(sql.pg_notify(channel, payload)))


def is_postgresql(database_url: str) -> bool:
    """Whether a listener can run on this database."""
    return make_url(database_url).get_backend_name() == "postgresql"


class NotificationListener:
    """One PostgreSQL connection LISTENing for a replica; reconnects until stopped."""

    def __init__(
        self,
        database_url: str,
        *,
        name: str = "notification listener",
        retry_seconds: float = 1.0,
        keepalive_seconds: float = 5.0,
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self.name = name
        """Its connection's `application_name`, as `pg_stat_activity` shows it."""
        self.retry_seconds = retry_seconds
        self.keepalive_seconds = keepalive_seconds
        self._handlers: dict[str, list[Handler]] = {}
        self._reset_handlers: list[Callable[[], None]] = []
        self._live = asyncio.Event()

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call `handler(payload)` for each notification on `channel` (before `running`)."""
        self._handlers.setdefault(channel, []).append(handler)

    def on_reset(self, handler: Callable[[], None]) -> None:
        """Call `handler()` whenever notifications may have been missed."""
        self._reset_handlers.append(handler)

    @property
    def live(self) -> bool:
        """Listening now: no notification committed since it went live was missed."""
        return self._live.is_set()

    async def wait_live(self, within_seconds: float) -> bool:
        """Wait until the listener is live, at most `within_seconds`; whether it is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_seconds):
                await self._live.wait()
        return self.live

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["NotificationListener"]:
        """Listen in a background task for as long as the context lasts."""
        task = asyncio.create_task(self._run(), name="notification-listener")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        import asyncpg  # only where a listener runs: PostgreSQL

        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(
                    self._dsn,
                    timeout=self.keepalive_seconds,
                    server_settings={"application_name": self.name},
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                for channel in self._handlers:
                    await connection.add_listener(channel, self._dispatch)
                self._went_live()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.keepalive_seconds):
                            await lost.wait()
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=self.keepalive_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke the connection: reset, then retry
                log.warning("notification_listener_lost", error=type(exc).__name__)
            finally:
                self._went_down()
                if connection is not None:
                    with contextlib.suppress(Exception):
                        connection.terminate()
            await asyncio.sleep(self.retry_seconds)

    def _dispatch(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, ()):
            handler(payload)

    def _went_live(self) -> None:
        # Reset before going live: whatever was kept while nobody listened is dropped.
        self._reset()
        self._live.set()

    def _went_down(self) -> None:
        if self._live.is_set():
            self._live.clear()
            self._reset()

    def _reset(self) -> None:
        for handler in self._reset_handlers:
            handler()
