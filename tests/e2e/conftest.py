"""The end-to-end suite: HTTP to the real gateway in front of the real services."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

import httpx
import pytest
from stack import Stack, running_stack


class DatabaseFactory(Protocol):
    """The root conftest's `database_factory`: empty databases on the current backend."""

    def create(self) -> str: ...


@pytest.fixture(scope="session")
def stack(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack per backend, shared by the tests that leave it as they found it."""
    urls = (database_factory.create(), database_factory.create())
    with running_stack(urls, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def private_stack(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., AbstractContextManager[Stack]]:
    """A stack of the test's own, for tests that stop parts of it."""

    def start(**extra_env: str) -> AbstractContextManager[Stack]:
        urls = (database_factory.create(), database_factory.create())
        return running_stack(urls, tmp_path_factory.mktemp("private-stack"), **extra_env)

    return start


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client for the gateway, the only door clients use."""
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client
