"""A full password-check queue is answered at once: 503 with Retry-After, in RFC 6749's words
at the token endpoint, as a problem at registration; the throttle counts none of it."""

import asyncio
from typing import Any

import anyio
import pytest

from auth_service.passwords import PasswordHasher
from testsupport.auth_service import STRONG_PASSWORD, register, running_app, settings_for

pytestmark = pytest.mark.anyio


class HeldHasher(PasswordHasher):
    """One thread and one waiting place; every check waits until `release` is set."""

    def __init__(self) -> None:
        super().__init__(4, 1, max_wait_seconds=1e-9)
        self.release = anyio.Event()
        self.release.set()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        await self.release.wait()
        return await super().verify(password, password_hash)


def _login_form(password: str = STRONG_PASSWORD) -> dict[str, Any]:
    return {"grant_type": "password", "username": "busy@example.com", "password": password}


async def test_a_full_queue_answers_503_at_once_and_counts_no_attempt(database_url: str) -> None:
    hasher = HeldHasher()
    async with running_app(settings_for(database_url), password_hasher=hasher) as client:
        await register(client, "busy@example.com")
        hasher.release = anyio.Event()
        held = [
            asyncio.create_task(client.post("/auth/token", data=_login_form("wrong guess!")))
            for _ in range(2)
        ]
        await asyncio.sleep(0.2)
        with anyio.fail_after(2):
            refused = await client.post("/auth/token", data=_login_form())
            registration = await client.post(
                "/auth/register", json={"email": "new@example.com", "password": STRONG_PASSWORD}
            )
        hasher.release.set()
        assert [(await task).status_code for task in held] == [400, 400]

        assert refused.status_code == 503
        assert refused.json()["error"] == "invalid_request"
        assert refused.headers["retry-after"] == "1"
        assert registration.status_code == 503
        assert registration.headers["content-type"] == "application/problem+json"
        assert registration.headers["retry-after"] == "1"
        # Once the queue drains the same sign-in works: the refusal was no failed attempt.
        assert (await client.post("/auth/token", data=_login_form())).status_code == 200
