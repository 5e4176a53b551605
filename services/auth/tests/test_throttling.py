"""Brute-force throttling in the database: free attempts, exponential waits, a cap, a reset."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import throttling
from auth_service.clock import utcnow
from auth_service.throttling import ThrottlePolicy
from service_kit.db import Database

pytestmark = pytest.mark.anyio

POLICY = ThrottlePolicy(
    free_per_account=3, free_per_address=10, base_seconds=1, max_seconds=60, window_seconds=900
)


def test_delays_double_after_the_free_attempts_and_are_capped() -> None:
    assert [POLICY.delay(n, 3) for n in range(1, 10)] == [0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert POLICY.delay(50, 3) == 60
    assert POLICY.delay(10_000, 3) == 60


def test_keys_never_hold_what_was_typed_and_group_ipv6_by_64() -> None:
    assert "hunter2" not in throttling.account_key(None, "hunter2")
    assert throttling.account_key(None, "Bob") == throttling.account_key(None, "bob")
    assert throttling.address_key("2001:db8::1") == throttling.address_key("2001:db8::ffff")
    assert throttling.address_key("203.0.113.9") == "address:203.0.113.9"


async def test_failures_block_until_the_wait_is_over_and_success_clears(db: AsyncSession) -> None:
    key = throttling.account_key("a1", "")
    now = utcnow()
    for _ in range(3):
        await throttling.record_failure(db, key, 3, POLICY, now)
    await db.commit()
    assert await throttling.retry_after(db, [key], now) is None
    await throttling.record_failure(db, key, 3, POLICY, now)
    await throttling.record_failure(db, key, 3, POLICY, now)
    await db.commit()
    assert await throttling.retry_after(db, [key], now) == 2
    assert await throttling.retry_after(db, [key], now + timedelta(seconds=3)) is None
    await throttling.clear(db, key)
    await db.commit()
    await throttling.record_failure(db, key, 3, POLICY, now)
    await db.commit()
    assert await throttling.retry_after(db, [key], now) is None


async def test_failures_outside_the_window_are_forgotten(db: AsyncSession) -> None:
    key = throttling.address_key("198.51.100.1")
    long_ago = utcnow() - timedelta(hours=1)
    for _ in range(20):
        await throttling.record_failure(db, key, 10, POLICY, long_ago)
    await throttling.record_failure(db, key, 10, POLICY, utcnow())
    await db.commit()
    assert await throttling.retry_after(db, [key], utcnow()) is None


async def test_concurrent_failures_are_all_counted(database: Database) -> None:
    key = throttling.account_key("shared", "")

    async def fail() -> None:
        async with database.db_session() as db:
            await throttling.record_failure(db, key, 3, POLICY, utcnow())
            await db.commit()

    await asyncio.gather(*(fail() for _ in range(10)))
    async with database.db_session() as db:
        # Ten failures, three free: the tenth blocks for 2^6 seconds, capped at 60.
        assert await throttling.retry_after(db, [key], utcnow()) == 60
