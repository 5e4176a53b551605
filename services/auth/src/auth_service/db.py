"""The async engine, its sessions, and the `Session` dependency routes use."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(database_url: str) -> AsyncEngine:
    """An engine for SQLite (WAL, foreign keys on) or PostgreSQL (connections checked).

    `hide_parameters`: a database error's message otherwise quotes the statement's
    parameters, and with them whatever the request carried, into the log.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_async_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
        )

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # One connection: SQLite has one writer at a time anyway, and writers that contend for
    # its lock back off in sleeps of up to 100 ms. Waiting for the pool's connection is an
    # asyncio wait instead, in arrival order. (Each replica still has its own connection;
    # busy_timeout covers those, and the CLI.)
    engine = create_async_engine(
        url,
        connect_args={"timeout": 15},
        pool_size=1,
        max_overflow=0,
        pool_timeout=30,
        hide_parameters=True,
    )

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


class Database:
    """One engine and session factory per application."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.database
    async with database.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]
