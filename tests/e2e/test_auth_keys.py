"""Signing-key rotation and brute-force throttling, on a stack of their own (short timings)."""

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
import jwt
import pytest

from testsupport.stack import Stack, running_stack

PASSWORD = "correct horse battery staple"
PUBLISH_DELAY_SECONDS = 6.0
FAST = {
    "BCRYPT_COST": "4",
    "JWKS_MAX_AGE_SECONDS": "1",
    "KEY_REFRESH_SECONDS": "0.5",
    "KEY_PUBLISH_DELAY_SECONDS": str(PUBLISH_DELAY_SECONDS),
    # The users service refetches the key set for an unknown kid at most this often.
    "JWKS_REFETCH_COOLDOWN_SECONDS": "1",
}


class _DatabaseFactory(Protocol):
    def create(self) -> str: ...


@pytest.fixture(scope="module")
def fast_stack(
    database_factory: _DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack per backend for this module: its throttling and keys are its own."""
    if os.environ.get("E2E_GATEWAY_URL"):
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


def _published(client: httpx.Client) -> list[str]:
    return [key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]]


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_rotation_while_tokens_are_in_use_fails_no_verification(fast_stack: Stack) -> None:
    with httpx.Client(base_url=fast_stack.url, timeout=10) as client:
        email = _account(client)
        tokens = _login(client, email).json()
        old_token = tokens["access_token"]
        old_kid = _kid(old_token)

        rotated = fast_stack.cli("auth", "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        # "new key <kid>: published now, signs from <time>"
        match = re.search(r"^new key (\S+): published now, signs from (\S+)$", rotated.stdout, re.M)
        assert match, rotated.stdout
        new_kid, activates_at = match.group(1), datetime.fromisoformat(match.group(2))

        # Published (every replica reloads within KEY_REFRESH_SECONDS) well before it signs.
        while new_kid not in _published(client):
            assert datetime.now(UTC) < activates_at, "the new key signs before it is published"
            time.sleep(0.1)
        assert datetime.now(UTC) < activates_at - timedelta(seconds=1)

        # Keep refreshing as a client would: every token verifies against the published set;
        # the old key signs until the new one is due, then the new one does.
        deadline = time.monotonic() + PUBLISH_DELAY_SECONDS + 15
        while True:
            assert time.monotonic() < deadline, "the new key never started signing"
            tokens = client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            ).json()
            claims = _verifies(client, tokens["access_token"])
            kid = _kid(tokens["access_token"])
            if kid == old_kid:
                time.sleep(0.25)
                continue
            assert kid == new_kid
            assert claims["iat"] >= int(activates_at.timestamp())
            break
        # A token the old key signed still verifies after the switch.
        _verifies(client, old_token)

        # The old key stays published while tokens it signed may live.
        states = {
            key["kid"]: key["state"]
            for key in json.loads(fast_stack.cli("auth", "keys", "list", "--json").stdout)["keys"]
        }
        assert states == {old_kid: "retired", new_kid: "active"}
        assert sorted(_published(client)) == sorted([old_kid, new_kid])


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
        assert throttled[-1].json()["error"] == "invalid_grant"
        time.sleep(retry_after)
        assert _login(client, email).status_code == 200


def _users_me(client: httpx.Client, access_token: str) -> int:
    return client.get("/users/me", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_a_revoked_key_is_unpublished_replaced_and_refused_within_its_bounds(
    fast_stack: Stack,
) -> None:
    with httpx.Client(base_url=fast_stack.url, timeout=10) as client:
        email = _account(client)
        before = _login(client, email).json()
        compromised = _kid(before["access_token"])
        _wait_for_users_to_accept(client, before["access_token"])  # verified, and cached

        revoked = fast_stack.cli("auth", "keys", "revoke", compromised)
        assert revoked.returncode == 0, revoked.stderr
        # Every auth replica follows within KEY_REFRESH_SECONDS: out of the key set, and
        # another key signs at once (no publish delay to wait for).
        deadline = time.monotonic() + 10
        while compromised in _published(client):
            assert time.monotonic() < deadline, "the revoked key is still published"
            time.sleep(0.1)
        after = _login(client, email).json()
        assert _kid(after["access_token"]) != compromised
        _verifies(client, after["access_token"])
        refused = client.post("/auth/logout-all", headers=_bearer(before["access_token"]))
        assert refused.status_code == 401
        # The users service refetches on the new kid (at most once per its cooldown) and
        # from then on refuses what the revoked key signed, cached verifications included.
        _wait_for_users_to_accept(client, after["access_token"])
        assert _users_me(client, before["access_token"]) == 401


def _wait_for_users_to_accept(client: httpx.Client, access_token: str) -> None:
    deadline = time.monotonic() + 15
    while _users_me(client, access_token) != 200:
        assert time.monotonic() < deadline, "the users service never verified the token"
        time.sleep(0.25)


def _bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}
