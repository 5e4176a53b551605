"""Fixtures of the auth service's unit tests: a fresh schema on each backend, an app on it."""

from collections.abc import AsyncIterator, Callable

import pytest
from helpers import create_schema, running_app, settings_for
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.db import Database


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """A fresh database on the current backend, with the service's tables."""
    url = new_database()
    create_schema(url)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def db(database: Database) -> AsyncIterator[AsyncSession]:
    async with database.sessions() as session:
        yield session


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncClient]:
    async with running_app(settings_for(database_url)) as client:
        yield client
