"""The token endpoint's grants and RFC 7009 revocation: sign-in by email or username,
rotation and reuse, throttling, clients and scopes; each grant one committed operation."""

import asyncio

import jwt
import pytest
from httpx import AsyncClient

from testsupport.auth_service import STRONG_PASSWORD, password_login, register

pytestmark = pytest.mark.anyio


async def test_password_grant_by_email_and_by_username(client: AsyncClient) -> None:
    account = await register(client, "Ada@Example.com", username="ada")
    for login in ("ada@example.com", "ADA@EXAMPLE.COM", "ada", "Ada"):
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": login, "password": STRONG_PASSWORD},
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == account["id"]


async def test_refresh_rotates_and_reuse_revokes_the_session(client: AsyncClient) -> None:
    await register(client, "bob@example.com")
    first = await password_login(client, "bob@example.com")
    refreshed = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]

    reused = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The whole family is gone, the legitimate successor included.
    successor = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert successor.json()["error"] == "invalid_grant"


async def test_eight_concurrent_refreshes_of_one_token_give_exactly_one_200(
    client: AsyncClient,
) -> None:
    await register(client, "carol@example.com")
    tokens = await password_login(client, "carol@example.com")
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(client.post("/auth/token", data=data) for _ in range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 7
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)


async def test_wrong_password_and_unknown_account_answer_the_same(client: AsyncClient) -> None:
    await register(client, "dave@example.com")
    answers = []
    for username in ("dave@example.com", "nobody@example.com", "nobody"):
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "wrong password"},
        )
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] == (
        400,
        {"error": "invalid_grant", "error_description": answers[0][1]["error_description"]},
    )


async def test_repeated_failures_are_throttled_with_retry_after(client: AsyncClient) -> None:
    await register(client, "erin@example.com")
    statuses = []
    for _ in range(8):
        response = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "erin@example.com",
                "password": "nope nope",
            },
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"] == "invalid_grant"
    assert 429 in statuses
    assert statuses[:5] == [400] * 5


async def test_a_refresh_from_another_client_fails_and_the_session_survives(
    client: AsyncClient,
) -> None:
    await register(client, "fay@example.com")
    tokens = await password_login(client, "fay@example.com", client_id="web-app")
    stranger = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "other-app",
        },
    )
    assert stranger.json()["error"] == "invalid_grant"
    anonymous = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert anonymous.json()["error"] == "invalid_grant"
    own = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "web-app",
        },
    )
    assert own.status_code == 200
    claims = jwt.decode(own.json()["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == "web-app"


async def test_a_narrower_scope_on_refresh_applies_to_that_access_token(
    client: AsyncClient,
) -> None:
    await register(client, "hal@example.com")
    tokens = await password_login(client, "hal@example.com", scope="profile")
    assert tokens["scope"] == "profile"
    wider = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "profile admin",
        },
    )
    assert wider.json()["error"] == "invalid_scope"


async def test_revoke_ends_the_whole_session_and_always_answers_200(client: AsyncClient) -> None:
    await register(client, "ivy@example.com")
    tokens = await password_login(client, "ivy@example.com")
    rotated = (
        await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    ).json()
    # Revoking the spent ancestor still revokes the session it belongs to.
    for token in (tokens["refresh_token"], "unknown-token", rotated["access_token"]):
        response = await client.post("/auth/revoke", data={"token": token})
        assert response.status_code == 200
        assert response.content == b""
    after = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert after.json()["error"] == "invalid_grant"


async def test_revoke_naming_another_client_revokes_nothing(client: AsyncClient) -> None:
    await register(client, "jan@example.com")
    tokens = await password_login(client, "jan@example.com", client_id="mobile")
    response = await client.post(
        "/auth/revoke", data={"token": tokens["refresh_token"], "client_id": "evil"}
    )
    assert response.status_code == 200
    still = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "mobile",
        },
    )
    assert still.status_code == 200
