"""A database failure in the middle of a sign-in, a refresh and a password change: the real
service (uvicorn, its own process) answers a bare 500, and nothing it writes to its log,
tracebacks included, holds the request's password, new password or tokens.

The failure is the database's own: triggers fire inside the statement that comes after the
password check. On PostgreSQL they terminate the connection (`pg_terminate_backend`), as a
restart or a failover would; on SQLite they abort the statement.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from service_kit.db import create_engine
from testsupport.auth_service import OTHER_STRONG_PASSWORD, STRONG_PASSWORD
from testsupport.stack import free_port

START_TIMEOUT_SECONDS = 60.0
# The statement after the password check in each request: a session's INSERT (sign-in),
# the refresh token's compare-and-set (refresh), the account's UPDATE (password change).
FAILING_STATEMENTS = [
    ("session_families", "INSERT"),
    ("refresh_tokens", "UPDATE"),
    ("accounts", "UPDATE"),
]


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`auth-service serve` in a process of its own; its base URL and its whole output."""
    port = free_port()
    log_path = tmp_path / "auth.log"
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": database_url,
        "AUTH_HOST": "127.0.0.1",
        "AUTH_PORT": str(port),
        "BCRYPT_COST": "4",
        "LOG_LEVEL": "DEBUG",
        "DATA_DIR": str(tmp_path),
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "auth_service", "serve"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/auth/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield url, log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _fail_inside_the_database(database_url: str) -> None:
    """Install the triggers that make each request's next statement fail."""
    if database_url.startswith("postgresql"):
        statements = [
            "CREATE FUNCTION cut_this_connection() RETURNS trigger AS $$ BEGIN "
            "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$ "
            "LANGUAGE plpgsql"
        ] + [
            f"CREATE TRIGGER cut_{table} BEFORE {operation} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION cut_this_connection()"
            for table, operation in FAILING_STATEMENTS
        ]
    else:
        statements = [
            f"CREATE TRIGGER fail_{table} BEFORE {operation} ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'the database failed'); END"
            for table, operation in FAILING_STATEMENTS
        ]

    async def install() -> None:
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    asyncio.run(install())


def test_a_database_failure_mid_request_logs_no_secret(
    service: tuple[str, Path], database_url: str
) -> None:
    url, log_path = service
    email = "crash@example.com"
    with httpx.Client(base_url=url, timeout=30) as client:
        registered = client.post(
            "/auth/register", json={"email": email, "password": STRONG_PASSWORD}
        )
        assert registered.status_code == 201
        sign_in = {"grant_type": "password", "username": email, "password": STRONG_PASSWORD}
        to_refresh = client.post("/auth/token", data=sign_in).json()
        to_change_with = client.post("/auth/token", data=sign_in).json()

        _fail_inside_the_database(database_url)
        answers = [
            client.post("/auth/token", data=sign_in),
            client.post(
                "/auth/token",
                data={"grant_type": "refresh_token", "refresh_token": to_refresh["refresh_token"]},
            ),
            client.post(
                "/auth/password",
                json={"current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD},
                headers={"Authorization": f"Bearer {to_change_with['access_token']}"},
            ),
        ]
    secrets = [
        STRONG_PASSWORD,
        OTHER_STRONG_PASSWORD,
        to_refresh["refresh_token"],
        to_refresh["access_token"],
        to_change_with["refresh_token"],
        to_change_with["access_token"],
    ]
    for answer in answers:
        assert answer.status_code == 500, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == "An unexpected error occurred."  # and nothing else
        assert set(answer.json()) == {"type", "title", "status", "detail"}
    # Give the process the time to flush its last lines, then read everything it wrote.
    time.sleep(0.5)
    log = log_path.read_text(errors="replace")
    crashes = [
        line
        for line in map(json.loads, filter(None, log.splitlines()))
        if line.get("event") == "unhandled_exception"
    ]
    # Not vacuous: the three failures are in the log, with their tracebacks.
    assert len(crashes) == 3, log[-4000:]
    for crash in crashes:
        frames = [frame for stack in crash["exception"] for frame in stack["frames"]]
        assert frames
        assert all("locals" not in frame for frame in frames)
    for secret in secrets:
        assert secret not in log
