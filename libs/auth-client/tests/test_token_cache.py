"""VerifiedTokenCache: bounded, least recently used out, never past a token's exp."""

import uuid

from auth_client import Principal
from auth_client.token_cache import VerifiedTokenCache, token_digest

EXP = 2_000_000_000


def access(expires_at: int = EXP) -> Principal:
    return Principal(
        subject=str(uuid.uuid4()),
        client_id="public",
        scopes=frozenset(),
        roles=frozenset(),
        session_id=str(uuid.uuid4()),
        expires_at=expires_at,
        issued_at=expires_at - 900,
        token_id=uuid.uuid4().hex,
        key_id="key-1",
    )


def test_a_stored_token_is_found_again() -> None:
    cache = VerifiedTokenCache(10, clock=lambda: EXP - 100)
    entry = access()
    cache.put("token-a", entry)
    assert cache.get("token-a") is entry
    assert cache.get("token-b") is None


def test_an_entry_never_outlives_the_token_exp() -> None:
    now = [EXP - 1.0]
    cache = VerifiedTokenCache(10, clock=lambda: now[0])
    cache.put("token-a", access())
    assert cache.get("token-a") is not None
    now[0] = EXP
    assert cache.get("token-a") is None
    assert len(cache) == 0  # dropped, not just hidden


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = VerifiedTokenCache(2, clock=lambda: 0)
    cache.put("a", access())
    cache.put("b", access())
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("c", access())
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


def test_the_cache_stays_within_its_bound() -> None:
    cache = VerifiedTokenCache(100, clock=lambda: 0)
    for n in range(1000):
        cache.put(f"token-{n}", access())
    assert len(cache) == 100


def test_a_zero_size_cache_stores_nothing() -> None:
    cache = VerifiedTokenCache(0, clock=lambda: 0)
    cache.put("a", access())
    assert cache.get("a") is None


def test_tokens_are_keyed_by_a_sha256_digest() -> None:
    # The token itself is never the key: a memory dump holds no usable bearer token.
    assert token_digest("abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
