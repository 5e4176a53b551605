"""Fixtures every suite shares: the database backends the tests run on.

SQLite always; PostgreSQL whenever one is reachable (`TEST_POSTGRES_URL`, else
127.0.0.1:5432), each test database a throwaway one dropped at the end of the run.
Under `CI=true`, a PostgreSQL that answers on its port but was not tested fails the run.
A service's tests provide `database_url` (its schema in a fresh database); `database` and
`db` are built on it.
"""

import os
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.db import Database
from testsupport.databases import DatabaseFactory, TcpProxy, admin_execute, admin_url, port_open
from testsupport.tokens import SigningKey

BACKENDS = ("sqlite", "postgresql")

_backends_used: set[str] = set()
_postgres_skipped_reason: str | None = None


def _postgres_available() -> None:
    """Skip (or, under CI with a server listening, fail) when PostgreSQL cannot be used."""
    global _postgres_skipped_reason
    if not port_open(admin_url()):
        _postgres_skipped_reason = "no PostgreSQL listening"
        pytest.skip(f"{_postgres_skipped_reason} at {make_url(admin_url()).host}")
    try:
        admin_execute("SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is listening but unusable under CI: {exc!r}")
        _postgres_skipped_reason = f"PostgreSQL unusable: {exc!r}"
        pytest.skip(_postgres_skipped_reason)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio, as uvicorn does."""
    return "asyncio"


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


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A `Database` on the service's `database_url`, disposed after the test."""
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def db(database: Database) -> AsyncIterator[AsyncSession]:
    """A database session on `database`."""
    async with database.db_session() as db:
        yield db


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    """The auth service's current key, as far as the verifier's tests are concerned."""
    return SigningKey.generate("key-1")


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    """A second key: the next one after a rotation, or an attacker's."""
    return SigningKey.generate("key-2")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _backends_used and _postgres_skipped_reason is None:
        return
    used = ", ".join(b for b in BACKENDS if b in _backends_used) or "none"
    line = f"database backends used: {used}"
    if "postgresql" in _backends_used:
        parsed = make_url(admin_url())
        line += f" (PostgreSQL at {parsed.host}:{parsed.port or 5432})"
    elif _postgres_skipped_reason:
        line += f" (PostgreSQL skipped: {_postgres_skipped_reason})"
    terminalreporter.write_sep("=", line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if (
        os.environ.get("CI") == "true"
        and _backends_used
        and "postgresql" not in _backends_used
        and port_open(admin_url())
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nCI: a PostgreSQL server is listening but no test ran on it")


@pytest.fixture
def database_proxy(new_database: Callable[[], str], backend: str) -> TcpProxy:
    """A fresh PostgreSQL database behind a `TcpProxy` (skipped on SQLite, which has no wire)."""
    if backend != "postgresql":
        pytest.skip("an outage through a TCP proxy needs a networked database")
    return TcpProxy(new_database())
