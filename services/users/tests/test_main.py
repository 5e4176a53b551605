"""The users app as `main` assembles it: ready when its database answers and it holds a key
set from the auth service; start-up needs neither. (`/health`, and readiness following the
database, are the chassis's: libs/service-kit/tests/test_health.py.)"""

from collections.abc import Callable

import pytest

from testsupport.tokens import JwksServer
from testsupport.users_service import running_app, settings_for

pytestmark = pytest.mark.anyio

UNREACHABLE_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"


async def test_ready_when_the_database_answers_and_keys_are_held(
    new_database: Callable[[], str], jwks_server: JwksServer
) -> None:
    async with running_app(settings_for(new_database()), jwks_server) as client:
        response = await client.get("/users/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_ready_is_a_503_problem_when_the_database_is_unreachable(
    jwks_server: JwksServer,
) -> None:
    async with running_app(settings_for(UNREACHABLE_DATABASE), jwks_server) as client:
        response = await client.get("/users/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "The database is not reachable."


async def test_start_up_survives_auth_being_down_and_ready_follows_it(
    new_database: Callable[[], str], jwks_server: JwksServer
) -> None:
    jwks_server.down = True
    settings = settings_for(new_database(), jwks_retry_seconds=0.01)
    async with running_app(settings, jwks_server) as client:
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
