"""The async engine, its sessions, and the `Session` dependency routes use."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Connection, event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

P = ParamSpec("P")
T = TypeVar("T")


def create_engine(database_url: str) -> AsyncEngine:
    """An engine for SQLite (WAL, foreign keys on) or PostgreSQL (connections checked)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 15})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    return engine


class Database:
    """One engine and session factory per application."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
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
        await self.engine.dispose()


async def get_database(request: Request) -> Database:
    # `async` and not a generator: FastAPI calls it inline, with no exit stack to unwind.
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
Db = Annotated[Database, Depends(get_database)]
