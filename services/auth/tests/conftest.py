"""Fixtures of the auth service's unit tests: a fresh schema on each backend, an app on it."""

from collections.abc import AsyncIterator, Callable
from typing import Protocol

import pytest
from helpers import (
    create_schema,
    create_schema_async,
    running_app,
    settings_for,
)
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


class _DatabaseFactory(Protocol):
    def create(self) -> str: ...


@pytest.fixture(scope="module")
async def shared_client(database_factory: _DatabaseFactory) -> AsyncIterator[AsyncClient]:
    """One app per module and backend, for tests that change nothing (bad input)."""
    url = database_factory.create()
    await create_schema_async(url)
    async with running_app(settings_for(url)) as client:
        yield client
