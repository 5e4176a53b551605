"""The auth service killed (SIGKILL) between writing an event and delivering it: after its
restart the event is delivered, and applied once as far as the consumer can tell.

Run by `make test-faults`, not by `make test`. The subscriber is a users process of the
test's own on a port of its own, down (nothing listening) while auth writes the event and
dies, started once auth is back; it shares its database with the stack's users service.
"""

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import make_url

from testsupport import ROOT
from testsupport.accounts import register_and_log_in
from testsupport.postgres_server import PrivatePostgres
from testsupport.stack import Stack, free_port, running_stack


def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        connection = await asyncpg.connect(dsn)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def wait_for(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not after {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - started


@contextmanager
def users_process(stack: Stack, port: int) -> Iterator[None]:
    """One more users-service process, on `port`; stopped by its PID's group."""
    process = subprocess.Popen(  # noqa: S603 - our own console script, fixed arguments
        [str(ROOT / ".venv" / "bin" / "users-service"), "serve"],
        env={**stack.env, "USERS_PORT": str(port)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _health(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_an_event_written_before_auth_is_killed_is_delivered_once_after_its_restart(
    private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    auth_db = private_postgres.create_database(f"auth_{suffix}")
    users_db = private_postgres.create_database(f"users_{suffix}")
    subscriber_port = free_port()
    with (
        running_stack(
            (auth_db, users_db),
            tmp_path,
            BCRYPT_COST="4",
            EVENT_SUBSCRIBERS=f"users=http://127.0.0.1:{subscriber_port}/users/events",
            EVENT_DELIVERY_TIMEOUT_SECONDS="2",
            EVENT_RETRY_MAX_SECONDS="1",
            EVENT_PUBLISHER_LEASE_SECONDS="3",
        ) as stack,
        httpx.Client(base_url=stack.url, timeout=10) as gateway,
    ):
        account = register_and_log_in(gateway)
        assert gateway.get("/users/me", headers=account.headers).status_code == 200

        disabled = stack.cli("auth", "accounts", "disable", account.email)
        assert disabled.returncode == 0, disabled.stderr
        (event_id,) = [
            row["id"]
            for row in query(
                auth_db,
                "SELECT id FROM events WHERE account_id = $1 AND type = 'account.disabled'",
                uuid.UUID(account.id),
            )
        ]
        time.sleep(1.5)  # the publisher tries to deliver it, and fails: nobody listens
        assert "event_delivery_failed" in stack.log()
        assert query(users_db, "SELECT id FROM processed_events WHERE id = $1", event_id) == []

        # SIGKILL: no shutdown, the lease is not handed back; the supervisor restarts it.
        (auth_pid,) = stack.service_pids("auth")
        os.kill(auth_pid, signal.SIGKILL)
        wait_for(
            lambda: (
                stack.service_pids("auth") not in ([], [auth_pid])
                and _health(f"{stack.auth_url}/auth/health")
            ),
            30,
            "auth restarted",
        )

        with users_process(stack, subscriber_port):
            elapsed = wait_for(
                lambda: gateway.get("/users/me", headers=account.headers).status_code == 401,
                30,
                "the disable delivered after the restart",
            )
            print(f"\nauth restarted, subscriber up -> delivered and refused in {elapsed:.1f}s")
            # Applied once: one processed id, one deny entry; the cursor is past it.
            processed = query(users_db, "SELECT id FROM processed_events WHERE id = $1", event_id)
            assert len(processed) == 1
            entries = query(users_db, "SELECT kind FROM deny_entries WHERE key = $1", account.id)
            assert [row["kind"] for row in entries] == ["subject"]
            (last,) = query(auth_db, "SELECT max(sequence) AS last FROM events")
            wait_for(
                lambda: (
                    query(auth_db, "SELECT last_sequence FROM event_cursors")[0][0] == last["last"]
                ),
                10,
                "the cursor at the last event",
            )
