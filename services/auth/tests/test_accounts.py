"""Registration: an email or username is taken case-insensitively, once, however many race."""

import asyncio

import pytest
from httpx import AsyncClient

from testsupport.auth_service import STRONG_PASSWORD, register

pytestmark = pytest.mark.anyio


async def test_taken_email_or_username_is_a_409_case_insensitively(client: AsyncClient) -> None:
    await register(client, "lee@example.com", username="lee")
    for payload in (
        {"email": "LEE@example.com", "password": STRONG_PASSWORD},
        {"email": "other@example.com", "password": STRONG_PASSWORD, "username": "LEE"},
    ):
        response = await client.post("/auth/register", json=payload)
        assert response.status_code == 409
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
