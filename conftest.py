"""Fixtures every suite shares: the database backends the tests run on.

SQLite always; PostgreSQL whenever one is reachable (`TEST_POSTGRES_URL`, else
127.0.0.1:5432), each test database a throwaway one dropped at the end of the run.
Under `CI=true`, a PostgreSQL that answers on its port but was not tested fails the run.
"""

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")

_backends_used: set[str] = set()
_postgres_skipped_reason: str | None = None


def _admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _admin_dsn() -> str:
    # asyncpg wants a plain postgresql:// URL, whatever driver the caller named.
    return make_url(_admin_url()).set(drivername="postgresql").render_as_string(False)


def _port_open(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), 2):
            return True
    except OSError:
        return False


async def _admin_execute(*statements: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


class DatabaseFactory:
    """Creates empty databases on one backend and drops them all at the end of the run."""

    def __init__(self, backend: str, scratch: Path) -> None:
        self.backend = backend
        self._scratch = scratch
        self._postgres_names: list[str] = []

    def create(self) -> str:
        """A fresh, empty database; its SQLAlchemy async URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._scratch / name}.sqlite3"
        asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
        self._postgres_names.append(name)
        url = make_url(_admin_url()).set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self._postgres_names:
            asyncio.run(
                _admin_execute(
                    *(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in self._postgres_names)
                )
            )


def _postgres_available() -> None:
    """Skip (or, under CI with a server listening, fail) when PostgreSQL cannot be used."""
    global _postgres_skipped_reason
    if not _port_open(_admin_url()):
        _postgres_skipped_reason = "no PostgreSQL listening"
        pytest.skip(f"{_postgres_skipped_reason} at {make_url(_admin_url()).host}")
    try:
        asyncio.run(_admin_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is listening but unusable under CI: {exc!r}")
        _postgres_skipped_reason = f"PostgreSQL unusable: {exc!r}"
        pytest.skip(_postgres_skipped_reason)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend a test runs on: every backend-aware test runs on both."""
    name: str = request.param
    if name == "postgresql":
        _postgres_available()
    _backends_used.add(name)
    return name


@pytest.fixture(scope="session")
def database_factory(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    yield factory
    factory.drop_all()


@pytest.fixture
def new_database(database_factory: DatabaseFactory) -> Callable[[], str]:
    """Call it to get the URL of a fresh, empty database on the current backend."""
    return database_factory.create


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _backends_used and _postgres_skipped_reason is None:
        return
    used = ", ".join(b for b in BACKENDS if b in _backends_used) or "none"
    line = f"database backends used: {used}"
    if "postgresql" in _backends_used:
        parsed = make_url(_admin_url())
        line += f" (PostgreSQL at {parsed.host}:{parsed.port or 5432})"
    elif _postgres_skipped_reason:
        line += f" (PostgreSQL skipped: {_postgres_skipped_reason})"
    terminalreporter.write_sep("=", line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if (
        os.environ.get("CI") == "true"
        and _backends_used
        and "postgresql" not in _backends_used
        and _port_open(_admin_url())
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nCI: a PostgreSQL server is listening but no test ran on it")
