"""Registration over HTTP: the account answered, RFC 9457 problems for bad input."""

import pytest
from httpx import AsyncClient

from testsupport.auth_service import STRONG_PASSWORD

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
