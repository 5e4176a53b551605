"""PostgreSQL connections are not pinged at every checkout: one idle for a while is pinged
and replaced if the database dropped it; a busy one that the database dropped fails its
request once, and the pool reconnects for the next."""

from collections.abc import Callable

import anyio
import pytest
from sqlalchemy import exc, make_url, text

from service_kit import db
from service_kit.db import Database
from testsupport.databases import admin_execute

pytestmark = pytest.mark.anyio


def _drop_connections(database_url: str) -> None:
    name = make_url(database_url).database
    admin_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - our name
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


async def _select_one(database: Database) -> int:
    async with database.engine.connect() as connection:
        return int((await connection.execute(text("SELECT 1"))).scalar_one())


@pytest.fixture
def postgres_url(backend: str, new_database: Callable[[], str]) -> str:
    if backend != "postgresql":
        pytest.skip("SQLite has no connection to lose")
    return new_database()


async def test_an_idle_connection_the_database_dropped_is_replaced_unseen(
    postgres_url: str,
) -> None:
    database = Database(postgres_url)
    try:
        assert await _select_one(database) == 1
        _drop_connections(postgres_url)
        await anyio.sleep(db.PING_AFTER_IDLE_SECONDS + 0.1)
        assert await _select_one(database) == 1
    finally:
        await database.dispose()


async def test_a_busy_connection_the_database_dropped_fails_once_then_the_pool_recovers(
    postgres_url: str,
) -> None:
    database = Database(postgres_url)
    try:
        assert await _select_one(database) == 1
        _drop_connections(postgres_url)
        with pytest.raises(exc.DBAPIError):
            await _select_one(database)  # checked out at once: no ping
        assert await _select_one(database) == 1
    finally:
        await database.dispose()
