"""Registration, password change and logout-all over HTTP: RFC 9457 problems on failure."""

import asyncio
import uuid
from typing import Any

import pytest
from helpers import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    password_login,
    register,
)
from httpx import AsyncClient

from auth_service import administration
from auth_service.clock import utcnow
from auth_service.db import Database

pytestmark = pytest.mark.anyio


async def test_register_answers_the_account_without_any_secret(client: AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={"email": "Kim@Example.COM", "password": STRONG_PASSWORD, "username": "kim"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "username", "roles", "created_at"}
    assert body["email"] == "Kim@example.com"
    assert body["roles"] == []
    assert STRONG_PASSWORD not in response.text


async def test_taken_email_or_username_is_a_409_case_insensitively(client: AsyncClient) -> None:
    await register(client, "lee@example.com", username="lee")
    for payload in (
        {"email": "LEE@example.com", "password": STRONG_PASSWORD},
        {"email": "other@example.com", "password": STRONG_PASSWORD, "username": "LEE"},
    ):
        response = await client.post("/auth/register", json=payload)
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("short1!", "password_too_short"),
        ("ä" * 37, "password_too_long"),
        ("password123", "password_too_weak"),
        ("mia@example.com", "password_is_personal"),
    ],
)
async def test_a_refused_password_is_a_422_naming_the_rule(
    shared_client: AsyncClient, password: str, rule: str
) -> None:
    response = await shared_client.post(
        "/auth/register", json={"email": "mia@example.com", "password": password}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["type"] == rule
    assert password not in response.text


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"email": "a@example.com", "password": "x", "email": "b@example.com"}', None, 422),
        (b'{"email": "not-an-email", "password": "correct horse battery staple"}', None, 422),
        (b'{"email": "a@example.com", "password": "x", "admin": true}', None, 422),
        (b'{"email": "a@example.com", "password": "x", "username": "a b"}', None, 422),
        (b'{"email": "a@example.com"}', None, 422),
        (b"[1, 2]", None, 422),
        (b"{", None, 422),
        (b"\xff\xfe", None, 422),
        (b"\xff", None, 400),
        (b"email=a@example.com&password=x", "application/x-www-form-urlencoded", 415),
        (b'{"email": "a@example.com", "password": "' + b"x" * 1_100_000 + b'"}', None, 413),
    ],
)
async def test_bad_registrations_are_problems_never_500(
    shared_client: AsyncClient, body: bytes, content_type: str | None, status: int
) -> None:
    response = await shared_client.post(
        "/auth/register",
        content=body,
        headers={"Content-Type": content_type or "application/json"},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_ten_simultaneous_registrations_of_one_email_give_one_201(
    client: AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                "/auth/register", json={"email": "ned@example.com", "password": STRONG_PASSWORD}
            )
            for _ in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9


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


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _refused(client: AsyncClient, tokens: dict[str, Any]) -> bool:
    """The access token no longer works on auth's own bearer endpoints (RFC 6750 §3.1)."""
    answers = [
        await client.post("/auth/logout-all", headers=_bearer(tokens)),
        await client.post(
            "/auth/password",
            json={"current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD},
            headers=_bearer(tokens),
        ),
    ]
    return all(
        answer.status_code == 401
        and answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        for answer in answers
    )


async def test_a_password_change_ends_the_other_sessions_access_tokens_at_once(
    client: AsyncClient,
) -> None:
    await register(client, "rae@example.com")
    this, other = [await password_login(client, "rae@example.com") for _ in range(2)]
    changed = await client.post(
        "/auth/password",
        json={"current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD},
        headers=_bearer(this),
    )
    assert changed.status_code == 204
    assert await _refused(client, other)
    # The caller's own session stays signed in.
    assert (await client.post("/auth/logout-all", headers=_bearer(this))).status_code == 204


async def test_logout_all_ends_every_access_token_this_one_included(client: AsyncClient) -> None:
    await register(client, "sal@example.com")
    this, other = [await password_login(client, "sal@example.com") for _ in range(2)]
    assert (await client.post("/auth/logout-all", headers=_bearer(this))).status_code == 204
    assert await _refused(client, this)
    assert await _refused(client, other)


async def test_refresh_token_reuse_ends_the_sessions_access_tokens(client: AsyncClient) -> None:
    await register(client, "tam@example.com")
    first = await password_login(client, "tam@example.com")
    data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = (await client.post("/auth/token", data=data)).json()
    assert (await client.post("/auth/token", data=data)).json()["error"] == "invalid_grant"
    assert await _refused(client, first)
    assert await _refused(client, second)


async def test_disabling_an_account_ends_its_access_tokens_and_enabling_lets_it_sign_in(
    client: AsyncClient, database: Database
) -> None:
    account = await register(client, "uma@example.com")
    tokens = await password_login(client, "uma@example.com")
    async with database.sessions() as db:
        await administration.disable(db, uuid.UUID(account["id"]), actor="test", now=utcnow())
    assert await _refused(client, tokens)
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
    async with database.sessions() as db:
        await administration.enable(db, uuid.UUID(account["id"]), actor="test", now=utcnow())
    await password_login(client, "uma@example.com")
