"""A service's database: the async engine, `Database`, and the `DbSession` routes depend on.

`db` is what this codebase calls a database session (SQLAlchemy's `AsyncSession`), always:
routes take `db: DbSession`, and the operation they call commits it.
"""

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, event, exc, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

P = ParamSpec("P")
T = TypeVar("T")

# A pooled PostgreSQL connection idle for longer is pinged before use (see _ping_when_idle).
PING_AFTER_IDLE_SECONDS = 1.0


def dialect_insert(dialect: str) -> Callable[[Any], "postgresql.Insert | sqlite.Insert"]:
    """The `INSERT … ON CONFLICT` construct of `dialect`: PostgreSQL's, or else SQLite's.

    Imported when first asked for, not at start: PostgreSQL's dialect module costs a process
    on SQLite ~4 MB of memory, SQLite's little, and only the database in use ever needs one.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert

        return insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def create_engine(database_url: str, *, sqlite_pool_size: int | None = None) -> AsyncEngine:
    """An engine for SQLite (WAL, foreign keys on) or PostgreSQL (idle connections checked).

    `sqlite_pool_size=1` queues a service's SQLite writers on one connection: SQLite has one
    writer at a time anyway, and writers that contend for its lock back off in sleeps of up
    to 100 ms, where waiting for the pool's connection is an asyncio wait, in arrival order.
    (Each replica and the CLI still have connections of their own; busy_timeout covers those.)

    `hide_parameters`: a database error's message otherwise quotes the statement's
    parameters, and with them whatever the request carried, into the log.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        engine = create_async_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
        _ping_when_idle(engine.sync_engine, PING_AFTER_IDLE_SECONDS)
        return engine

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    pool: dict[str, Any] = {}
    if sqlite_pool_size is not None:
        pool = {"pool_size": sqlite_pool_size, "max_overflow": 0, "pool_timeout": 30}
    engine = create_async_engine(url, connect_args={"timeout": 15}, hide_parameters=True, **pool)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL never corrupts the database; it syncs at checkpoints instead of
        # at every commit (a power cut may lose the last commits, a crash loses nothing).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only when it has been idle for `idle_seconds`.

    SQLAlchemy's `pool_pre_ping` pings at every checkout: a round trip per request, which
    cost a sixth of an introspection's CPU (py-spy; docs/benchmarks.md). A connection in
    steady use needs none: if the database went away under it, the statement fails with a
    disconnect error, and SQLAlchemy then discards every connection of the pool made before
    it (that request fails; the next ones reconnect). A connection that idled (the database
    may have restarted meanwhile) is pinged; a failed ping is a disconnect, and the pool
    retries with a new connection, as pre-ping does.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:
            raise exc.DisconnectionError("an idle pooled connection failed its ping") from error


class Database:
    """One engine per application, and the database sessions (`db`) made on it."""

    def __init__(self, database_url: str, *, sqlite_pool_size: int | None = None) -> None:
        self.engine = create_engine(database_url, sqlite_pool_size=sqlite_pool_size)
        self.db_session = async_sessionmaker(self.engine, expire_on_commit=False)
        """`async with database.db_session() as db:` a new database session."""
        # Plain reads need no transaction: on PostgreSQL, autocommit saves a BEGIN and a
        # ROLLBACK round trip per read (SQLite's driver opens no transaction for a SELECT, and
        # switching it to autocommit costs more than it saves).
        postgres = self.engine.dialect.name == "postgresql"
        self._reads = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else self.engine
        )

    async def run(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run `work` on a pooled connection, in one greenlet, and give back its result.

        For the hot paths: Core statements without a session. `work` commits what it writes.
        """
        async with self._reads.connect() as connection:
            return await connection.run_sync(work, *args, **kwargs)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection (the app's shutdown)."""
        await self.engine.dispose()


async def get_database(request: Request) -> Database:
    """The app's `Database` (`create_service_app` put it in the app's state)."""
    # `async` and not a generator: FastAPI calls it inline, with no exit stack to unwind.
    database: Database = request.app.state.database
    return database


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session for one request, closed (and rolled back if uncommitted) after it."""
    database: Database = request.app.state.database
    async with database.db_session() as db:
        yield db


DbSession = Annotated[AsyncSession, Depends(get_db_session)]
DatabaseDep = Annotated[Database, Depends(get_database)]
