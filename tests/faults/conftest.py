"""Fault tests: a PostgreSQL server of the suite's own, which it may restart at will."""

from collections.abc import Iterator

import pytest

from testsupport.postgres_server import POSTGRES_BIN, PrivatePostgres, private_postgres_server


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    if not POSTGRES_BIN:
        pytest.skip("needs PostgreSQL's server binaries (Debian's postgresql package)")
    with private_postgres_server() as server:
        yield server
