"""Liveness and readiness as every service has them, on both database backends."""

from collections.abc import Callable

import pytest
from fastapi import Request

from service_kit.health import ReadinessCheck
from testsupport.databases import TcpProxy
from testsupport.example_service import UNREACHABLE_DATABASE, example_client

pytestmark = pytest.mark.anyio


async def test_health_answers_without_touching_the_database() -> None:
    async with example_client(UNREACHABLE_DATABASE) as client:
        response = await client.get("/example/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers(new_database: Callable[[], str]) -> None:
    async with example_client(new_database()) as client:
        response = await client.get("/example/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_ready_is_a_503_problem_when_the_database_is_unreachable() -> None:
    async with example_client(UNREACHABLE_DATABASE) as client:
        response = await client.get("/example/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The database is not reachable."


async def test_ready_recovers_by_itself_when_the_database_comes_back(
    database_proxy: TcpProxy,
) -> None:
    async with database_proxy, example_client(database_proxy.database_url) as client:
        assert (await client.get("/example/ready")).status_code == 200
        await database_proxy.cut()
        assert (await client.get("/example/ready")).status_code == 503
        assert (await client.get("/example/health")).status_code == 200
        await database_proxy.start()
        assert (await client.get("/example/ready")).status_code == 200


async def test_a_service_check_that_fails_or_raises_is_a_503_with_its_detail(
    new_database: Callable[[], str],
) -> None:
    async def never(_request: Request) -> bool:
        return False

    async def broken(_request: Request) -> bool:
        raise RuntimeError("no")

    for probe in (never, broken):
        check = ReadinessCheck("keys", "keys are held", "No keys yet.", probe)
        async with example_client(new_database(), readiness=[check]) as client:
            response = await client.get("/example/ready")
        assert response.status_code == 503
        assert response.json()["detail"] == "No keys yet."


async def test_the_docs_say_what_ready_means() -> None:
    async def held(_request: Request) -> bool:
        return True

    check = ReadinessCheck("keys", "keys are held", "No keys yet.", held)
    async with example_client(UNREACHABLE_DATABASE, readiness=[check]) as client:
        document = (await client.get("/example/openapi.json")).json()
    description = document["paths"]["/example/ready"]["get"]["description"]
    assert "the database answers and keys are held" in description
