"""The users app as `main` assembles it: ready when its database answers and it holds a key
set from the auth service, start-up needing neither; and, safe without the gateway, an
oversized body refused before authentication and without being read. (`/health`, readiness
following the database, security headers and the body limit as such are the chassis's:
libs/service-kit/tests/.)"""

from collections.abc import Callable

import httpx
import pytest

from testsupport.apps import CHUNK, UploadBody, modules_loaded_with
from testsupport.tokens import JwksServer
from testsupport.users_service import running_app, settings_for

pytestmark = pytest.mark.anyio

UNREACHABLE_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
TWENTY_MIB = 20 * 1024 * 1024


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


async def test_a_declared_20_mib_body_is_413_before_authentication_and_unread(
    client: httpx.AsyncClient,
) -> None:
    body = UploadBody(TWENTY_MIB, allowed=0)
    response = await client.patch(
        "/users/me",  # no token: without the limit this read 20 MiB, then answered 401
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(TWENTY_MIB)},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert body.sent == 0


async def test_a_streamed_body_is_cut_off_past_one_mib_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    one_mib = 1024 * 1024
    body = UploadBody(TWENTY_MIB, allowed=one_mib + CHUNK)
    response = await client.patch(
        "/users/me", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert body.sent == one_mib + CHUNK


# What a request path never needs at start (issue 16, part 6: idle memory): the migrations
# come with `migrate`, PostgreSQL's dialect and driver only on PostgreSQL.
DEFERRED_IMPORTS = [
    "alembic",
    "asyncpg",
    "sqlalchemy.dialects.postgresql",
]


def test_the_app_module_imports_nothing_only_some_requests_need() -> None:
    assert modules_loaded_with("users_service.main", DEFERRED_IMPORTS) == []
