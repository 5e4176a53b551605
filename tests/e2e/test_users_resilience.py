"""Valid tokens keep working while the auth service rotates its keys and while it is down.

One private stack for both (a stack costs more to start than the test takes to run), with
short key timings and the verified-token cache off, so that every request is checked against
the key set the users service holds.
"""

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx

from testsupport.accounts import Account, register_and_log_in, unverified_part
from testsupport.stack import Stack

KEY_TIMINGS = {
    # auth: the key set may be cached 2 s, replicas reload keys every 1 s, a rotated-in key
    # is published 4 s before it signs.
    "JWKS_MAX_AGE_SECONDS": "2",
    "KEY_REFRESH_SECONDS": "1",
    "KEY_PUBLISH_DELAY_SECONDS": "4",
    # users: honour that short max-age, verify every request, give up on a fetch after 1 s.
    "JWKS_CACHE_MIN_SECONDS": "1",
    "TOKEN_CACHE_SIZE": "0",
    "JWKS_FETCH_TIMEOUT_SECONDS": "1",
}
ROTATION_DEADLINE_SECONDS = 30.0
OUTAGE_SECONDS = 4.0


def refreshed(client: httpx.Client, account: Account) -> Account:
    response = client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": account.refresh_token},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(account.id, account.email, body["access_token"], body["refresh_token"])


def kid_of(account: Account) -> str:
    kid: str = unverified_part(account.access_token, 0)["kid"]
    return kid


def wait_for_published_kids(client: httpx.Client, count: int) -> set[str]:
    """The JWKS's kids once it lists `count` (replicas reload keys every KEY_REFRESH_SECONDS)."""
    deadline = time.monotonic() + 10
    while True:
        kids = {key["kid"] for key in client.get("/.well-known/jwks.json").json()["keys"]}
        if len(kids) >= count or time.monotonic() > deadline:
            return kids
        time.sleep(0.2)


@contextmanager
def auth_stopped(stack: Stack) -> Iterator[list[int]]:
    """SIGSTOP the auth service's own processes (by PID), SIGCONT them afterwards.

    Stopped rather than killed: `make run` restarts a process killed by a signal, and a
    process that accepts connections but never answers is the harder outage anyway.
    """
    pids = stack.service_pids("auth")
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_valid_tokens_keep_working_through_a_key_rotation_and_an_auth_outage(
    private_stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    with (
        private_stack(**KEY_TIMINGS) as stack,
        httpx.Client(base_url=stack.url, timeout=10) as client,
    ):
        first = register_and_log_in(client)
        old_kid = kid_of(first)
        statuses: Counter[int] = Counter()

        # Rotation: tokens from the old key and from the refreshed sessions are used
        # throughout; the new key must be known here before the first token it signs arrives.
        rotated = stack.cli("auth", "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert len(wait_for_published_kids(client, 2)) == 2

        current = first
        deadline = time.monotonic() + ROTATION_DEADLINE_SECONDS
        new_key_requests = 0
        while new_key_requests < 3:
            assert time.monotonic() < deadline, "the rotated-in key never signed a token"
            current = refreshed(client, current)
            for account in (first, current):
                statuses[client.get("/users/me", headers=account.headers).status_code] += 1
            if kid_of(current) != old_kid:
                new_key_requests += 1
            time.sleep(0.2)
        assert statuses == Counter({200: statuses.total()}), statuses

        # Outage: auth stops answering; tokens it issued before keep answering 200, also
        # past the key set's max-age, when refreshes are due and fail.
        unused = register_and_log_in(client)  # a token the users service has never seen
        with auth_stopped(stack):
            try:
                auth = client.get("/auth/health", timeout=2)
            except httpx.TimeoutException:
                pass
            else:
                raise AssertionError(f"auth still answers: {auth.status_code}")
            outage_statuses: Counter[int] = Counter()
            until = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < until:
                for account in (first, current, unused):
                    response = client.get("/users/me", headers=account.headers, timeout=5)
                    outage_statuses[response.status_code] += 1
                time.sleep(0.1)
            assert client.get("/users/ready", timeout=5).status_code == 200
        assert outage_statuses == Counter({200: outage_statuses.total()}), outage_statuses
        assert '"event": "jwks_fetch_failed"' in stack.log()
