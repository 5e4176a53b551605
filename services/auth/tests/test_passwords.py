"""Password rules and bcrypt hashing (no database, no HTTP)."""

import itertools
import time

import anyio
import bcrypt
import pytest

from auth_service.passwords import (
    PasswordHasher,
    PasswordPolicyError,
    PasswordWorkBusyError,
    check_policy,
    hash_cost,
    normalize,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Ab1!xyz", "password_too_short"),
        ("🔑" * 19, "password_too_long"),  # 19 characters, 76 bytes
        ("password1", "password_too_weak"),
        ("qwertyuiop", "password_too_weak"),
        ("Zoe@Example.com", "password_is_personal"),
        ("zoe.the.great", "password_is_personal"),
        ("zoe.the.great1", "password_too_weak"),
    ],
)
def test_policy_names_the_broken_rule(password: str, rule: str) -> None:
    with pytest.raises(PasswordPolicyError) as refused:
        check_policy(
            normalize(password), personal=["zoe@example.com", "zoe.the.great"], min_score=3
        )
    assert refused.value.rule == rule


def test_a_long_unusual_passphrase_is_accepted() -> None:
    check_policy("correct horse battery staple", personal=["zoe@example.com"], min_score=3)


def test_seventy_two_bytes_is_the_limit_never_truncated() -> None:
    check_policy("x7#Qm" * 14 + "ab", personal=[], min_score=0)  # 72 bytes
    with pytest.raises(PasswordPolicyError):
        check_policy("x7#Qm" * 14 + "abc", personal=[], min_score=0)  # 73 bytes


def test_nfkc_makes_compatible_spellings_the_same_password() -> None:
    assert normalize("\uff50\uff41\uff53\uff53\u2460") == "pass1"  # full-width, circled 1
    assert normalize("e\u0301") == "\u00e9"


async def test_hash_verify_and_rehash_on_a_lower_cost() -> None:
    hasher = PasswordHasher(cost=5, threads=2)
    hashed = await hasher.hash("correct horse battery staple")
    assert hash_cost(hashed) == 5
    assert await hasher.verify("correct horse battery staple", hashed)
    assert not await hasher.verify("correct horse battery stapler", hashed)
    assert not hasher.needs_rehash(hashed)
    old = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    assert hasher.needs_rehash(old)


async def test_verify_normalises_what_was_typed() -> None:
    hasher = PasswordHasher(cost=4, threads=1)
    fullwidth = "\uff43\uff4f\uff52\uff52\uff45\uff43\uff54"  # "correct", full-width
    hashed = await hasher.hash(normalize(f"{fullwidth} horse battery"))
    assert await hasher.verify("correct horse battery", hashed)


async def test_no_account_checks_a_dummy_hash_and_never_matches() -> None:
    hasher = PasswordHasher(cost=4, threads=1)
    assert not await hasher.verify("dummy password", None)
    assert not await hasher.verify("x" * 100, await hasher.hash("y" * 72))


async def test_hashing_never_blocks_the_event_loop() -> None:
    hasher = PasswordHasher(cost=11, threads=2)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await hasher.hash("correct horse battery staple")
        group.cancel_scope.cancel()
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert len(ticks) > 5
    assert max(gaps) < 0.1


async def test_admission_refuses_at_once_past_what_the_threads_finish_in_the_wait() -> None:
    hasher = PasswordHasher(4, 1, max_wait_seconds=1e-9)  # one thread, one waiting
    assert hasher.capacity == 2
    release = anyio.Event()

    async def hold() -> None:
        with hasher.admission():
            await release.wait()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold)
        tasks.start_soon(hold)
        await anyio.sleep(0.01)
        with pytest.raises(PasswordWorkBusyError), hasher.admission():
            pass
        release.set()
    with hasher.admission(), hasher.admission():  # free again; nested counts once
        assert await hasher.verify("anything", None) is False


def test_the_queue_is_sized_by_the_time_one_hash_takes() -> None:
    assert PasswordHasher(4, 2).capacity == 0  # no wait given: unbounded
    # At cost 4 a hash takes well under a millisecond: a second's wait admits hundreds.
    assert PasswordHasher(4, 2, max_wait_seconds=1).capacity > 100
