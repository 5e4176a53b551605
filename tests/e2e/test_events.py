"""Revocation reaches the users service through auth's events: within 10 s of a disable or a
session's revocation, the users service refuses the still-unexpired access token; delivery
resumes after the users service was down; two users replicas both refuse."""

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import httpx
import pytest

from testsupport.accounts import PASSWORD, Account, register_and_log_in
from testsupport.stack import Stack

# The contract's bound; the figure measured is printed.
REVOCATION_BOUND_SECONDS = 10.0


def refused_within(
    client: httpx.Client,
    account: Account,
    bound: float = REVOCATION_BOUND_SECONDS,
    *,
    meanwhile: frozenset[int] = frozenset({200}),
) -> float:
    """Seconds until `GET /users/me` with the account's access token is a 401 (fails past
    `bound`, or on a status not in `meanwhile`)."""
    started = time.monotonic()
    while True:
        status = client.get("/users/me", headers=account.headers).status_code
        elapsed = time.monotonic() - started
        if status == 401:
            return elapsed
        assert status in meanwhile, status
        assert elapsed < bound, f"still {status} after {elapsed:.1f}s"
        time.sleep(0.1)


def disable(stack: Stack, account: Account) -> None:
    disabled = stack.cli("auth", "accounts", "disable", account.email)
    assert disabled.returncode == 0, disabled.stderr


def test_a_disabled_accounts_token_is_refused_by_the_users_service_within_10s(
    stack: Stack, gateway: httpx.Client
) -> None:
    stack.require_local()
    account = register_and_log_in(gateway)
    assert gateway.get("/users/me", headers=account.headers).status_code == 200
    disable(stack, account)
    print(f"\ndisable -> users 401 in {refused_within(gateway, account):.2f}s")


def test_a_revoked_sessions_token_is_refused_by_the_users_service_within_10s(
    gateway: httpx.Client,
) -> None:
    # RFC 7009 revocation of one session: its access token goes, the other session's stays.
    account = register_and_log_in(gateway)
    other = register_and_log_in(gateway)
    assert gateway.get("/users/me", headers=account.headers).status_code == 200
    revoked = gateway.post("/auth/revoke", data={"token": account.refresh_token})
    assert revoked.status_code == 200
    print(f"\n/auth/revoke -> users 401 in {refused_within(gateway, account):.2f}s")
    assert gateway.get("/users/me", headers=other.headers).status_code == 200

    # Signing out everywhere: every session's token goes.
    assert gateway.get("/users/me", headers=other.headers).status_code == 200
    out = gateway.post("/auth/logout-all", headers=other.headers)
    assert out.status_code == 204, out.text
    print(f"logout-all -> users 401 in {refused_within(gateway, other):.2f}s")


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """The process stopped (SIGSTOP: it answers nothing), then continued; by PID, ours."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_deletion_made_while_the_users_service_was_down_removes_the_profile_after(
    stack: Stack, gateway: httpx.Client
) -> None:
    stack.require_local()
    account, other = register_and_log_in(gateway), register_and_log_in(gateway)
    assert gateway.get("/users/me", headers=account.headers).status_code == 200
    profile = f"/users/{account.id}"
    assert gateway.get(profile, headers=other.headers).status_code == 200
    (users_pid,) = stack.service_pids("users")
    with paused(users_pid):
        deleted = gateway.request(
            "DELETE", "/auth/account", headers=account.headers, json={"password": PASSWORD}
        )
        assert deleted.status_code == 204, deleted.text
        time.sleep(2)  # the publisher tries, and fails, meanwhile
    # The event was kept, and is delivered once the service answers again (the gateway may
    # say 503 until its health check sees the service back): the profile goes.
    started = time.monotonic()
    while (status := gateway.get(profile, headers=other.headers).status_code) != 404:
        assert status in {200, 502, 503, 504}, status
        assert time.monotonic() - started < 20, "the profile is still there"
        time.sleep(0.1)
    print(f"\nusers back -> profile gone in {time.monotonic() - started:.2f}s")
    # And the deleted account's still-unexpired token is refused.
    assert gateway.get("/users/me", headers=account.headers).status_code == 401


@pytest.fixture
def two_users_replicas(
    backend: str, private_stack: Callable[..., AbstractContextManager[Stack]]
) -> Iterator[Stack]:
    if backend != "postgresql":
        pytest.skip("several replicas need PostgreSQL")
    with private_stack(USERS_REPLICAS="2") as stack:
        yield stack


def test_both_users_replicas_refuse_a_revoked_token(two_users_replicas: Stack) -> None:
    stack = two_users_replicas
    ports = [int(port) for port in stack.env["USERS_REPLICA_PORTS"].split(",")]
    with httpx.Client(base_url=stack.url, timeout=10) as gateway:
        account = register_and_log_in(gateway)
    disable(stack, account)
    started = time.monotonic()
    for port in ports:  # each replica, directly: the gateway would pick one
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as replica:
            left = REVOCATION_BOUND_SECONDS - (time.monotonic() - started)
            refused_within(replica, account, left)
            print(f"\nreplica {port}: 401 {time.monotonic() - started:.2f}s after the disable")
