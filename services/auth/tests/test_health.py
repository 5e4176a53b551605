"""Liveness and readiness of the auth service, on both database backends."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from httpx import ASGITransport, AsyncClient

from auth_service.main import create_app
from auth_service.settings import Settings
from testsupport.databases import TcpProxy

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def _client(database_url: str) -> AsyncIterator[AsyncClient]:
    app = create_app(Settings(database_url=database_url))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app), base_url="http://auth.test") as client,
    ):
        yield client


async def test_health_answers_without_touching_the_database() -> None:
    unreachable = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    async with _client(unreachable) as client:
        response = await client.get("/auth/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(new_database: Callable[[], str]) -> None:
    async with _client(new_database()) as client:
        response = await client.get("/auth/ready")
    assert response.status_code == 200


async def test_ready_is_a_503_problem_when_the_database_is_unreachable() -> None:
    async with _client("postgresql+asyncpg://nobody@127.0.0.1:1/none") as client:
        response = await client.get("/auth/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The database is not reachable."


async def test_ready_recovers_by_itself_when_the_database_comes_back(
    database_proxy: TcpProxy,
) -> None:
    async with database_proxy, _client(database_proxy.database_url) as client:
        assert (await client.get("/auth/ready")).status_code == 200
        await database_proxy.cut()
        assert (await client.get("/auth/ready")).status_code == 503
        assert (await client.get("/auth/health")).status_code == 200
        await database_proxy.start()
        assert (await client.get("/auth/ready")).status_code == 200
