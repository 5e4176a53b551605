"""The caller of auth's bearer endpoints: a valid access token (RFC 6750) whose session is
live and whose account is enabled."""

import uuid

import pytest
from httpx import AsyncClient

from auth_service import administration
from auth_service.clock import utcnow
from service_kit.db import Database
from testsupport.auth_service import (
    STRONG_PASSWORD,
    password_login,
    refused_on_bearer_endpoints,
    register,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, "Bearer"),
        ("Bearer not.a.jwt", 'Bearer error="invalid_token"'),
        ("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", 'Bearer error="invalid_token"'),
    ],
)
async def test_signed_in_endpoints_need_a_valid_bearer_token(
    shared_client: AsyncClient, authorization: str | None, challenge: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await shared_client.post("/auth/logout-all", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.headers["content-type"] == "application/problem+json"


async def test_refresh_token_reuse_ends_the_sessions_access_tokens(client: AsyncClient) -> None:
    await register(client, "tam@example.com")
    first = await password_login(client, "tam@example.com")
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = (await client.post("/auth/token", data=data)).json()
    assert (await client.post("/auth/token", data=data)).json()["error"] == "invalid_grant"
    assert await refused_on_bearer_endpoints(client, first)
    assert await refused_on_bearer_endpoints(client, second)


async def test_disabling_an_account_ends_its_access_tokens_and_enabling_lets_it_sign_in(
    client: AsyncClient, database: Database
) -> None:
    account = await register(client, "uma@example.com")
    tokens = await password_login(client, "uma@example.com")
    async with database.db_session() as db:
        await administration.disable(db, uuid.UUID(account["id"]), actor="test", now=utcnow())
    assert await refused_on_bearer_endpoints(client, tokens)
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.json()["error"] == "invalid_grant"
    denied = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "uma@example.com", "password": STRONG_PASSWORD},
    )
    assert denied.json()["error"] == "invalid_grant"
    async with database.db_session() as db:
        await administration.enable(db, uuid.UUID(account["id"]), actor="test", now=utcnow())
    await password_login(client, "uma@example.com")
