"""Liveness and readiness of the users service, on both database backends.

Ready means: the database answers and a key set from the auth service is held. Start-up
needs neither.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from httpx import ASGITransport, AsyncClient
from token_minting import JwksServer, settings_for

from testsupport.databases import TcpProxy
from users_service.main import create_app

pytestmark = pytest.mark.anyio

UNREACHABLE_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"


@asynccontextmanager
async def _client(database_url: str, jwks_server: JwksServer) -> AsyncIterator[AsyncClient]:
    settings = settings_for(database_url, jwks_retry_seconds=0.01)
    app = create_app(settings, jwks_transport=jwks_server.transport)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://users.test") as client,
    ):
        yield client


async def test_health_answers_without_touching_the_database(jwks_server: JwksServer) -> None:
    async with _client(UNREACHABLE_DATABASE, jwks_server) as client:
        response = await client.get("/users/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers_and_keys_are_held(
    new_database: Callable[[], str], jwks_server: JwksServer
) -> None:
    async with _client(new_database(), jwks_server) as client:
        response = await client.get("/users/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_ready_is_a_503_problem_when_the_database_is_unreachable(
    jwks_server: JwksServer,
) -> None:
    async with _client(UNREACHABLE_DATABASE, jwks_server) as client:
        response = await client.get("/users/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The database is not reachable."


async def test_start_up_survives_auth_being_down_and_ready_follows_it(
    new_database: Callable[[], str], jwks_server: JwksServer
) -> None:
    jwks_server.down = True
    async with _client(new_database(), jwks_server) as client:
        assert (await client.get("/users/health")).status_code == 200
        not_ready = await client.get("/users/ready")
        assert not_ready.status_code == 503
        assert not_ready.headers["content-type"] == "application/problem+json"
        assert "signing keys" in not_ready.json()["detail"]

        jwks_server.down = False
        # A probe after the retry interval loads the keys; it may take a few.
        for _ in range(100):
            if (await client.get("/users/ready")).status_code == 200:
                break
        assert (await client.get("/users/ready")).json() == {"status": "ready"}


async def test_ready_recovers_by_itself_when_the_database_comes_back(
    database_proxy: TcpProxy, jwks_server: JwksServer
) -> None:
    async with database_proxy, _client(database_proxy.database_url, jwks_server) as client:
        assert (await client.get("/users/ready")).status_code == 200
        await database_proxy.cut()
        assert (await client.get("/users/ready")).status_code == 503
        assert (await client.get("/users/health")).status_code == 200
        await database_proxy.start()
        assert (await client.get("/users/ready")).status_code == 200
