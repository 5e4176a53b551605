"""A signed-in account's credentials: a password change ends the other sessions, logout-all
ends every one, their access tokens refused at once."""

import pytest
from httpx import AsyncClient

from testsupport.auth_service import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    bearer,
    password_login,
    refused_on_bearer_endpoints,
    register,
)

pytestmark = pytest.mark.anyio


async def test_password_change_revokes_the_other_sessions_only(client: AsyncClient) -> None:
    await register(client, "ola@example.com")
    this = await password_login(client, "ola@example.com")
    other = await password_login(client, "ola@example.com")
    headers = {"Authorization": f"Bearer {this['access_token']}"}
    wrong = await client.post(
        "/auth/password",
        json={"current_password": "not it at all", "new_password": OTHER_STRONG_PASSWORD},
        headers=headers,
    )
    assert wrong.status_code == 403
    changed = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 204, changed.text

    def refresh(token: str):  # type: ignore[no-untyped-def]
        return client.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
        )

    assert (await refresh(other["refresh_token"])).status_code == 400
    assert (await refresh(this["refresh_token"])).status_code == 200
    await password_login(client, "ola@example.com", OTHER_STRONG_PASSWORD)
    old = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "ola@example.com", "password": STRONG_PASSWORD},
    )
    assert old.status_code == 400


async def test_logout_all_revokes_every_session(client: AsyncClient) -> None:
    await register(client, "pam@example.com")
    sessions = [await password_login(client, "pam@example.com") for _ in range(2)]
    response = await client.post(
        "/auth/logout-all", headers={"Authorization": f"Bearer {sessions[0]['access_token']}"}
    )
    assert response.status_code == 204
    for tokens in sessions:
        refreshed = await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.json()["error"] == "invalid_grant"


async def test_a_password_change_ends_the_other_sessions_access_tokens_at_once(
    client: AsyncClient,
) -> None:
    await register(client, "rae@example.com")
    this, other = [await password_login(client, "rae@example.com") for _ in range(2)]
    changed = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD},
        headers=bearer(this),
    )
    assert changed.status_code == 204
    assert await refused_on_bearer_endpoints(client, other)
    # The caller's own session stays signed in.
    assert (await client.post("/auth/logout-all", headers=bearer(this))).status_code == 204


async def test_logout_all_ends_every_access_token_this_one_included(client: AsyncClient) -> None:
    await register(client, "sal@example.com")
    this, other = [await password_login(client, "sal@example.com") for _ in range(2)]
    assert (await client.post("/auth/logout-all", headers=bearer(this))).status_code == 204
    assert await refused_on_bearer_endpoints(client, this)
    assert await refused_on_bearer_endpoints(client, other)
