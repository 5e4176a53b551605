"""Fixtures of the users service's unit tests: signing keys the tests make, migrated databases."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from token_minting import JwksServer, SigningKey, settings_for

from users_service import migrations
from users_service.db import Database
from users_service.main import create_app


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    """The auth service's current key, as far as these tests are concerned."""
    return SigningKey.generate("key-1")


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    """A second key: the next one after a rotation, or an attacker's."""
    return SigningKey.generate("key-2")


@pytest.fixture
def database_url(new_database: Callable[[], str]) -> str:
    """A fresh database on the current backend, migrated to head."""
    url = new_database()
    migrations.upgrade(url)
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> JwksServer:
    """The auth service's JWKS endpoint, publishing `signing_key`."""
    return JwksServer(keys=[signing_key.jwk()])


@pytest.fixture
async def client(database_url: str, jwks_server: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """The whole users app (lifespan included) on a migrated database, spoken to over ASGI."""
    app = create_app(settings_for(database_url), jwks_transport=jwks_server.transport)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://users.test"
        ) as http,
    ):
        yield http
