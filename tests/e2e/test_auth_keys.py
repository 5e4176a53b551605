"""Signing-key rotation and brute-force throttling, on a stack of their own (short timings)."""

import time
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import httpx
import jwt
import pytest
from stack import Stack, running_stack

from conftest import EXTERNAL_GATEWAY_URL

PASSWORD = "correct horse battery staple"
PUBLISH_DELAY_SECONDS = 4.0
FAST = {
    "BCRYPT_COST": "4",
    "JWKS_MAX_AGE_SECONDS": "1",
    "KEY_REFRESH_SECONDS": "0.5",
    "KEY_PUBLISH_DELAY_SECONDS": str(PUBLISH_DELAY_SECONDS),
}


class _DatabaseFactory(Protocol):
    def create(self) -> str: ...


@pytest.fixture(scope="module")
def fast_stack(
    database_factory: _DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack per backend for this module: its throttling and keys are its own."""
    if EXTERNAL_GATEWAY_URL:
        pytest.skip("needs a stack of its own with short key timings")
    urls = (database_factory.create(), database_factory.create())
    with running_stack(urls, tmp_path_factory.mktemp("auth-keys"), **FAST) as stack:
        yield stack


def _account(client: httpx.Client) -> str:
    email = f"k-{uuid.uuid4().hex[:12]}@example.com"
    assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).is_success
    return email


def _login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(
        "/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )


def _verifies(client: httpx.Client, access_token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
    key = jwks[jwt.get_unverified_header(access_token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        access_token,
        key,
        algorithms=["RS256"],
        audience="auth-platform",
        issuer=str(client.base_url).rstrip("/"),
    )
    return claims


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_rotation_while_tokens_are_in_use_fails_no_verification(fast_stack: Stack) -> None:
    with httpx.Client(base_url=fast_stack.url, timeout=10) as client:
        email = _account(client)
        old_token = _login(client, email).json()
        old_kid = _kid(old_token["access_token"])

        rotated = fast_stack.cli("auth", "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        published_at = time.monotonic()

        # Published at once (within a reload), signing only after the delay.
        new_kid = None
        seen_signing: list[str] = []
        deadline = published_at + PUBLISH_DELAY_SECONDS + 5
        while time.monotonic() < deadline:
            kids = [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]
            token = client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": old_token["refresh_token"]},
            ).json()
            old_token = token
            kid = _kid(token["access_token"])
            seen_signing.append(kid)
            assert kid in kids  # every token verifies against the published set
            _verifies(client, token["access_token"])
            if kid != old_kid:
                new_kid = kid
                break
            if len(kids) == 2:
                new_kid_candidate = next(k for k in kids if k != old_kid)
                assert kid == old_kid, new_kid_candidate
            time.sleep(0.3)
        assert new_kid is not None, "the new key never started signing"
        assert time.monotonic() - published_at >= PUBLISH_DELAY_SECONDS - 0.5
        assert seen_signing[0] == old_kid

        # The old key stays published: tokens it signed still verify.
        listing = fast_stack.cli("auth", "keys", "list", "--json")
        states = {
            key["kid"]: key["state"] for key in __import__("json").loads(listing.stdout)["keys"]
        }
        assert states[new_kid] == "active"
        kids = [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]
        assert old_kid in kids
        assert new_kid in kids


def test_thirty_wrong_passwords_meet_a_429_and_the_right_one_works_after_the_wait(
    fast_stack: Stack,
) -> None:
    with httpx.Client(base_url=fast_stack.url, timeout=10) as client:
        email = _account(client)
        answers = [_login(client, email, "wrong password!") for _ in range(30)]
        throttled = [a for a in answers if a.status_code == 429]
        assert throttled, [a.status_code for a in answers]
        assert all(a.status_code in (400, 429) for a in answers)
        retry_after = int(throttled[-1].headers["retry-after"])
        assert 1 <= retry_after <= 900
        assert throttled[-1].json()["error"] == "slow_down"
        time.sleep(retry_after)
        assert _login(client, email).status_code == 200
