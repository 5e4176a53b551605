"""Fixtures of the users service's tests: migrated databases, a JWKS endpoint, the app."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from testsupport.tokens import JwksServer, SigningKey
from testsupport.users_service import running_app, settings_for
from users_service.migrations import HISTORY


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """A fresh database on the current backend, migrated to head."""
    url = new_database()
    HISTORY.upgrade(url)
    return url


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> JwksServer:
    """The auth service's JWKS endpoint, publishing `signing_key`."""
    return JwksServer(keys=[signing_key.jwk()])


@pytest.fixture
async def client(database_url: str, jwks_server: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """The whole users app (lifespan included) on a migrated database, spoken to over ASGI."""
    async with running_app(settings_for(database_url), jwks_server) as client:
        yield client
