"""Fixtures of the auth-client tests: the signing keys the tests make."""

import pytest
from token_minting import SigningKey


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (`@pytest.mark.anyio`) run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    """The auth service's current key, as far as these tests are concerned."""
    return SigningKey.generate("key-1")


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    """A second key: the next one after a rotation, or an attacker's."""
    return SigningKey.generate("key-2")
