"""Fixtures of the auth service's tests: a fresh schema on each backend, an app on it."""

from collections.abc import AsyncIterator, Callable

import pytest
from httpx import AsyncClient

from testsupport.auth_service import create_schema, create_schema_async, running_app, settings_for
from testsupport.databases import DatabaseFactory


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """A fresh database on the current backend, with the service's tables."""
    url = new_database()
    create_schema(url)
    return url


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncClient]:
    """The auth app on `database_url`, its keys loaded, and a client on it."""
    async with running_app(settings_for(database_url)) as client:
        yield client


@pytest.fixture(scope="module")
async def shared_client(database_factory: DatabaseFactory) -> AsyncIterator[AsyncClient]:
    """One app per module and backend, for tests that change nothing (bad input)."""
    url = database_factory.create()
    await create_schema_async(url)
    async with running_app(settings_for(url)) as client:
        yield client
