"""The caller's sessions over HTTP (list, revoke one) and the erasure of its account."""

import uuid

import pytest
from httpx import AsyncClient

from testsupport.auth_service import (
    STRONG_PASSWORD,
    bearer,
    password_login,
    refused_on_bearer_endpoints,
    register,
)

pytestmark = pytest.mark.anyio


async def _refresh(client: AsyncClient, refresh_token: str) -> int:
    response = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )
    return response.status_code


async def test_sessions_lists_the_live_ones_and_marks_the_current(client: AsyncClient) -> None:
    await register(client, "sal@example.com")
    first = await password_login(client, "sal@example.com")
    second = await password_login(client, "sal@example.com")
    ended = await password_login(client, "sal@example.com")
    await client.post("/auth/revoke", data={"token": ended["refresh_token"]})

    response = await client.get("/auth/sessions", headers=bearer(second))

    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert len(items) == 2
    assert {tuple(sorted(item)) for item in items} == {
        ("client_id", "created_at", "current", "id", "last_used_at")
    }
    assert [item["current"] for item in items].count(True) == 1
    assert all(item["client_id"] == "public" for item in items)
    assert first["refresh_token"] not in response.text


async def test_a_refresh_moves_the_sessions_last_used_at(client: AsyncClient) -> None:
    await register(client, "lu@example.com")
    tokens = await password_login(client, "lu@example.com")
    before = (await client.get("/auth/sessions", headers=bearer(tokens))).json()["items"][0]
    refreshed = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    after = (await client.get("/auth/sessions", headers=bearer(refreshed.json()))).json()["items"]
    assert after[0]["id"] == before["id"]
    assert after[0]["last_used_at"] > before["last_used_at"]
    assert after[0]["created_at"] == before["created_at"]


async def test_revoking_a_session_ends_its_refresh_and_access_tokens(client: AsyncClient) -> None:
    await register(client, "rev@example.com")
    keeper = await password_login(client, "rev@example.com")
    leaver = await password_login(client, "rev@example.com")
    listed = (await client.get("/auth/sessions", headers=bearer(leaver))).json()["items"]
    leaver_id = next(item["id"] for item in listed if item["current"])

    response = await client.delete(f"/auth/sessions/{leaver_id}", headers=bearer(keeper))

    assert response.status_code == 204
    assert await _refresh(client, leaver["refresh_token"]) == 400
    assert await refused_on_bearer_endpoints(client, leaver)
    assert await _refresh(client, keeper["refresh_token"]) == 200
    again = await client.delete(f"/auth/sessions/{leaver_id}", headers=bearer(keeper))
    assert again.status_code == 404


async def test_another_accounts_session_is_a_404_and_stays_live(client: AsyncClient) -> None:
    await register(client, "one@example.com")
    await register(client, "two@example.com")
    mine = await password_login(client, "one@example.com")
    theirs = await password_login(client, "two@example.com")
    their_id = (await client.get("/auth/sessions", headers=bearer(theirs))).json()["items"][0]["id"]

    for session_id in (their_id, str(uuid.uuid4())):
        response = await client.delete(f"/auth/sessions/{session_id}", headers=bearer(mine))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert await _refresh(client, theirs["refresh_token"]) == 200


async def test_sessions_need_a_live_access_token(client: AsyncClient) -> None:
    assert (await client.get("/auth/sessions")).status_code == 401
    response = await client.delete(f"/auth/sessions/{uuid.uuid4()}")
    assert response.status_code == 401


async def test_deleting_the_account_needs_its_password_and_erases_it(client: AsyncClient) -> None:
    await register(client, "del@example.com", username="deleted")
    this = await password_login(client, "del@example.com")
    other = await password_login(client, "deleted")

    wrong = await client.request(
        "DELETE", "/auth/account", json={"password": "not the password"}, headers=bearer(this)
    )
    assert wrong.status_code == 403
    assert wrong.headers["content-type"] == "application/problem+json"
    deleted = await client.request(
        "DELETE", "/auth/account", json={"password": STRONG_PASSWORD}, headers=bearer(this)
    )

    assert deleted.status_code == 204, deleted.text
    assert await _refresh(client, other["refresh_token"]) == 400
    assert (await client.get("/auth/sessions", headers=bearer(this))).status_code == 401
    login = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "deleted", "password": STRONG_PASSWORD},
    )
    assert login.status_code == 400
    # The email and username are free again.
    await register(client, "del@example.com", username="deleted")


async def test_account_deletion_refuses_a_body_without_the_password(client: AsyncClient) -> None:
    await register(client, "keep@example.com")
    tokens = await password_login(client, "keep@example.com")
    for body in ({}, {"password": ""}, {"password": STRONG_PASSWORD, "extra": 1}):
        response = await client.request(
            "DELETE", "/auth/account", json=body, headers=bearer(tokens)
        )
        assert response.status_code == 422, body
    assert (await client.get("/auth/sessions", headers=bearer(tokens))).status_code == 200
