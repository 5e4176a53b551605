"""The one throttled password check, over HTTP: the password grant and POST /auth/password
share it; simultaneous guesses get no extra checks; existing and unknown logins answer alike;
an attacker's failures never keep the owner out."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response

from auth_service.main import create_app
from testsupport.auth_service import (
    OTHER_STRONG_PASSWORD,
    STRONG_PASSWORD,
    CountingHasher,
    password_login,
    register,
    settings_for,
)

pytestmark = pytest.mark.anyio

# Waits long enough that no test meets the end of one by accident on a slow machine.
SLOW_THROTTLE: dict[str, Any] = {
    "login_free_attempts_per_account_address": 5,
    "login_throttle_base_seconds": 60,
}

Clients = Callable[..., AbstractAsyncContextManager[tuple[CountingHasher, list[AsyncClient]]]]


@pytest.fixture
def clients(database_url: str) -> Clients:
    """One app, a counting hasher, and one HTTP client per client address given."""

    @asynccontextmanager
    async def start(
        *addresses: str, **settings: Any
    ) -> AsyncIterator[tuple[CountingHasher, list[AsyncClient]]]:
        hasher = CountingHasher()
        app = create_app(settings_for(database_url, **settings), password_hasher=hasher)
        async with app.router.lifespan_context(app):
            opened = [
                AsyncClient(
                    transport=ASGITransport(app, client=(address, 50000)),
                    base_url="http://auth.test",
                )
                for address in addresses
            ]
            try:
                yield hasher, opened
            finally:
                for client in opened:
                    await client.aclose()

    return start


WRONG_PASSWORD = "wrong guess!"


def _guess(client: AsyncClient, username: str, password: str = WRONG_PASSWORD) -> Any:
    return client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


def _answer(response: Response) -> tuple[int, Any, str | None]:
    return response.status_code, response.json(), response.headers.get("retry-after")


async def test_simultaneous_wrong_guesses_get_no_more_checks_than_sequential_ones(
    clients: Clients,
) -> None:
    async with clients("203.0.113.20", "203.0.113.21", **SLOW_THROTTLE) as (hasher, (a, b)):
        await register(a, "seq@example.com")
        await register(a, "par@example.com")
        hasher.checks = 0
        sequential = [await _guess(a, "seq@example.com") for _ in range(40)]
        sequential_checks, hasher.checks = hasher.checks, 0
        simultaneous = await asyncio.gather(*(_guess(b, "par@example.com") for _ in range(40)))
        simultaneous_checks = hasher.checks
    assert sequential_checks == 6  # five free, the sixth checked and blocking the rest
    assert simultaneous_checks <= sequential_checks
    statuses = sorted(response.status_code for response in simultaneous)
    assert statuses == [400] * simultaneous_checks + [429] * (40 - simultaneous_checks)
    for response in [*sequential, *simultaneous]:
        if response.status_code == 429:
            assert response.json()["error"] == "invalid_grant"
            assert 1 <= int(response.headers["retry-after"]) <= 61  # ceil, and clock reads


@pytest.mark.parametrize(
    ("failing_as", "then_as"),
    [("{}", "  {}  "), ("{}", "{upper}"), ("  {upper} ", "{}")],
    ids=["spaces-after", "case-after", "both-before"],
)
async def test_throttled_logins_answer_alike_whether_the_account_exists_or_not(
    clients: Clients, failing_as: str, then_as: str
) -> None:
    answers = []
    async with clients("203.0.113.30", **SLOW_THROTTLE) as (_, (client,)):
        await register(client, "kim@example.com")
        for login in ("kim@example.com", "nobody@example.com"):
            spell = {"": login, "upper": login.upper()}
            for _ in range(6):
                await _guess(client, failing_as.format(spell[""], **spell))
            answers.append(_answer(await _guess(client, then_as.format(spell[""], **spell))))
    assert answers[0] == answers[1]
    assert answers[0][0] == 429


async def test_an_attackers_failures_never_keep_the_owner_out(clients: Clients) -> None:
    attackers = [f"192.0.2.{n}" for n in range(1, 13)]
    settings = {"login_targeted_first_wait_seconds": 1}
    async with clients(*attackers, "198.51.100.1", **settings) as (_, opened):
        *attacking, owner = opened
        await register(owner, "eve-target@example.com")
        # Twelve addresses, two rounds of guesses: the login is targeted, and an address
        # that has failed on it twice since waits the longest wait.
        for round_ in range(2):
            if round_:
                await asyncio.sleep(1.1)  # the short wait after a first failure
            for client in attacking:
                await _guess(client, "eve-target@example.com")
        blocked = await _guess(attacking[-1], "eve-target@example.com")
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 60
        # The owner, from an address that has not been failing, signs in at once.
        for _ in range(3):
            await password_login(owner, "eve-target@example.com")
        # After a typo of their own, one short wait, then in.
        assert (await _guess(owner, "eve-target@example.com")).status_code == 400
        waiting = await _guess(owner, "eve-target@example.com", STRONG_PASSWORD)
        assert waiting.status_code == 429
        assert waiting.headers["retry-after"] == "1"
        await asyncio.sleep(1.1)
        await password_login(owner, "EVE-TARGET@example.com ")


async def test_the_current_password_check_shares_the_sign_in_throttle(
    clients: Clients,
) -> None:
    async with clients("203.0.113.40", **SLOW_THROTTLE) as (hasher, (client,)):
        await register(client, "joy@example.com")
        tokens = await password_login(client, "joy@example.com")
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        hasher.checks = 0
        statuses = []
        for _ in range(8):
            response = await client.post(
                "/auth/password",
                json={"current_password": "not it at all", "new_password": OTHER_STRONG_PASSWORD},
                headers=headers,
            )
            statuses.append(response.status_code)
        assert statuses == [403] * 6 + [429] * 2
        assert hasher.checks == 6
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["content-type"] == "application/problem+json"
        # The same login from the same address is throttled at the token endpoint too.
        refused = await _guess(client, "joy@example.com", STRONG_PASSWORD)
        assert refused.status_code == 429


async def test_simultaneous_right_and_wrong_passwords_never_fail_the_request(
    clients: Clients,
) -> None:
    # Releases and reservations of the same rows, at once: they must queue, not deadlock.
    async with clients("203.0.113.50", "203.0.113.51") as (_, (a, b)):
        await register(a, "mix@example.com")
        attempts = [
            _guess(client, "mix@example.com", password)
            for client in (a, b)
            for password in [STRONG_PASSWORD, WRONG_PASSWORD] * 6
        ]
        statuses = {response.status_code for response in await asyncio.gather(*attempts)}
    assert statuses <= {200, 400, 429}
    assert 200 in statuses
