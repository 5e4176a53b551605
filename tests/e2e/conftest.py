"""The end-to-end suite: HTTP to the real gateway in front of the real services.

By default each backend gets a stack of its own, started with `make run` on free ports.
With `E2E_GATEWAY_URL` set, the suite runs once against that gateway instead (the
compose stack), skipping the tests that need to touch the processes.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol

import httpx
import pytest

from testsupport.stack import EXTERNAL_GATEWAY_URL, Stack, running_stack


class DatabaseFactory(Protocol):
    """The root conftest's `database_factory`: empty databases on the current backend."""

    def create(self) -> str: ...


if EXTERNAL_GATEWAY_URL:

    @pytest.fixture(scope="session")
    def backend() -> str:
        """Overrides the root conftest's: the external stack brings its own database."""
        return "external"


@pytest.fixture(scope="session")
def stack(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack per backend, shared by the tests that leave it as they found it."""
    if EXTERNAL_GATEWAY_URL:
        yield Stack.external(EXTERNAL_GATEWAY_URL)
        return
    urls = (database_factory.create(), database_factory.create())
    with running_stack(urls, tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def private_stack(
    database_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., AbstractContextManager[Stack]]:
    """A stack of the test's own, for tests that stop parts of it."""
    if EXTERNAL_GATEWAY_URL:
        pytest.skip("needs a stack of its own; the gateway under test is external")

    def start(**extra_env: str) -> AbstractContextManager[Stack]:
        urls = (database_factory.create(), database_factory.create())
        workdir = tmp_path_factory.mktemp("private-stack")
        stack: AbstractContextManager[Stack] = running_stack(urls, workdir, **extra_env)
        return stack

    return start


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client for the gateway, the only door clients use."""
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client
