"""The sign-in throttle in the database: reserve before checking, hard blocks per pair and
per address, a login-wide count that only slows, and the bound on distributed guessing.

Time is a parameter of every throttle function: these tests drive a fake clock.
"""

import asyncio
import heapq
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import throttling
from auth_service.accounts import normalize_login
from auth_service.models import LoginThrottle
from auth_service.settings import Settings
from auth_service.throttling import Reservation, SignInKeys, ThrottledError, ThrottlePolicy
from service_kit.db import Database

pytestmark = pytest.mark.anyio

POLICY = ThrottlePolicy(
    free_per_pair=3,
    free_per_address=10,
    free_per_login=30,
    base_seconds=1,
    max_seconds=60,
    window_seconds=900,
)
# The defaults of the settings (README): the figure the README states is computed from these.
DEFAULTS = ThrottlePolicy(
    free_per_pair=5,
    free_per_address=20,
    free_per_login=10,
    base_seconds=1,
    max_seconds=900,
    window_seconds=900,
)
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _keys(login: str, address: str) -> SignInKeys:
    return SignInKeys.of(normalize_login(login), address)


async def _try(
    db: AsyncSession, keys: SignInKeys, now: datetime, policy: ThrottlePolicy = POLICY
) -> Reservation | int:
    """One attempt as the sign-in operation makes it: the reservation, or the wait."""
    try:
        reservation = await throttling.reserve(db, keys, policy, now)
    except ThrottledError as exc:
        await db.rollback()
        return exc.retry_after
    await db.commit()
    return reservation


def test_delays_double_after_the_free_attempts_and_are_capped() -> None:
    assert [POLICY.delay(n, 3) for n in range(1, 10)] == [0, 0, 0, 1, 2, 4, 8, 16, 32]
    assert POLICY.delay(50, 3) == 60
    assert POLICY.delay(10_000, 3) == 60


def test_keys_never_hold_what_was_typed_and_every_spelling_is_one_login() -> None:
    keys = _keys("hunter2", "203.0.113.9")
    assert "hunter2" not in f"{keys.login}{keys.pair}"
    assert keys.address == "address:203.0.113.9"
    for spelling in ("  Ada@Example.COM ", "ADA@example.com", "ada@EXAMPLE.com\t"):
        assert _keys(spelling, "203.0.113.9") == _keys("ada@example.com", "203.0.113.9")
    assert _keys(" Bob ", "203.0.113.9") == _keys("bob", "203.0.113.9")
    assert _keys("bob", "2001:db8::1") == _keys("bob", "2001:db8::ffff")  # one /64, one host
    assert _keys("bob", "203.0.113.9") != _keys("bob", "203.0.113.10")


async def test_a_pair_blocks_after_its_free_failures_and_a_success_clears_it(
    db: AsyncSession,
) -> None:
    keys = _keys("ada@example.com", "203.0.113.1")
    for _ in range(POLICY.free_per_pair):
        assert isinstance(await _try(db, keys, _at(0)), Reservation)
    # The fourth is checked, and sets the wait the fifth meets.
    fourth = await _try(db, keys, _at(0))
    assert isinstance(fourth, Reservation)
    assert await _try(db, keys, _at(0.5)) == 1
    fifth = await _try(db, keys, _at(1))
    assert isinstance(fifth, Reservation)
    assert await _try(db, keys, _at(1)) == 2
    # Right password at the fifth attempt: the pair starts again from nothing.
    await throttling.release(db, fifth)
    await db.commit()
    for _ in range(POLICY.free_per_pair + 1):
        assert isinstance(await _try(db, keys, _at(3)), Reservation)


async def test_a_refused_attempt_counts_nothing(db: AsyncSession) -> None:
    keys = _keys("ada@example.com", "203.0.113.2")
    for _ in range(POLICY.free_per_pair + 1):
        await _try(db, keys, _at(0))
    before = {row.key: row.failures for row in await db.scalars(select(LoginThrottle))}
    await db.commit()
    for _ in range(5):
        assert await _try(db, keys, _at(0.1)) == 1
    after = {row.key: row.failures for row in await db.scalars(select(LoginThrottle))}
    assert after == before


async def test_failures_are_forgotten_after_a_quiet_window(db: AsyncSession) -> None:
    keys = _keys("ada@example.com", "203.0.113.3")
    for _ in range(8):
        await _try(db, keys, _at(0))
    assert isinstance(await _try(db, keys, _at(0)), int)  # blocked
    # Forgotten only a whole window after the wait is over, not after the last failure.
    blocked_until = await db.scalar(
        select(LoginThrottle.blocked_until).where(LoginThrottle.key == keys.pair)
    )
    await db.commit()
    assert blocked_until is not None
    quiet = (blocked_until - T0).total_seconds() + POLICY.window_seconds
    for _ in range(POLICY.free_per_pair):
        reservation = await _try(db, keys, _at(quiet + 1))
        assert isinstance(reservation, Reservation)
        assert reservation.blocks[keys.pair] is None


async def test_an_address_failing_on_many_logins_is_blocked_on_all(db: AsyncSession) -> None:
    for n in range(POLICY.free_per_address + 1):
        assert isinstance(await _try(db, _keys(f"user{n}", "198.51.100.7"), _at(0)), Reservation)
    assert await _try(db, _keys("somebody-else", "198.51.100.7"), _at(0)) == 1
    assert isinstance(await _try(db, _keys("somebody-else", "198.51.100.8"), _at(0)), Reservation)


async def test_simultaneous_attempts_get_no_more_checks_than_sequential_ones(
    database: Database,
) -> None:
    slow = ThrottlePolicy(3, 100, 100, base_seconds=60, max_seconds=600, window_seconds=900)

    async def attempt(keys: SignInKeys) -> bool:
        async with database.db_session() as db:
            return isinstance(await _try(db, keys, _at(0), slow), Reservation)

    sequential = [await attempt(_keys("one-by-one", "192.0.2.1")) for _ in range(40)]
    simultaneous = await asyncio.gather(
        *(attempt(_keys("all-at-once", "192.0.2.2")) for _ in range(40))
    )
    assert sum(sequential) == slow.free_per_pair + 1
    assert sum(simultaneous) <= sum(sequential)


async def test_a_targeted_login_slows_every_failing_address_but_never_refuses_the_owner(
    db: AsyncSession,
) -> None:
    victim = "victim@example.com"
    for n in range(POLICY.free_per_login + 1):
        # Many addresses, one failure each: no pair and no address is blocked.
        await _try(db, _keys(victim, f"203.0.113.{100 + n}"), _at(n))
    # Targeted: a new attacking address gets its guess and, after a short wait (the one an
    # owner's typo costs), another; then it waits the longest wait after each.
    attacker = _keys(victim, "192.0.2.50")
    first = await _try(db, attacker, _at(40))
    assert isinstance(first, Reservation)
    assert first.targeted
    assert await _try(db, attacker, _at(41)) == POLICY.targeted_first_wait_seconds - 1
    assert isinstance(await _try(db, attacker, _at(45)), Reservation)
    assert await _try(db, attacker, _at(46)) == POLICY.max_seconds - 1
    # The owner, from an address that has not been failing, is checked at once, every time.
    owner = _keys(victim, "198.51.100.99")
    for second in (42, 43, 44):
        reservation = await _try(db, owner, _at(second))
        assert isinstance(reservation, Reservation)
        await throttling.release(db, reservation)  # the right password
        await db.commit()


async def _attack(
    db: AsyncSession, policy: ThrottlePolicy, addresses: int, seconds: float, pause: bool
) -> list[float]:
    """An attacker guessing one login from `addresses` addresses, each as soon as the
    throttle lets it; with `pause`, it also stops every address whenever the login has
    turned targeted, for a window, to start the login's count afresh. Returns the times
    of the guesses that got a password check."""
    victim = "victim@example.com"
    queue = [(0.0, n) for n in range(addresses)]
    guesses: list[float] = []
    resume_at = 0.0
    while queue:
        now, n = heapq.heappop(queue)
        if now >= seconds:
            continue
        if now < resume_at:
            heapq.heappush(queue, (resume_at, n))
            continue
        outcome = await _try(db, _keys(victim, f"10.{n // 250}.{n % 250}.1"), _at(now), policy)
        if isinstance(outcome, int):
            heapq.heappush(queue, (now + outcome, n))
            continue
        guesses.append(now)  # the guess is wrong: the reservation stays
        if pause and outcome.targeted:
            resume_at = now + policy.window_seconds + 1
        waits = [b for b in outcome.blocks.values() if b is not None]
        next_try = max(waits).timestamp() - T0.timestamp() if waits else now
        heapq.heappush(queue, (next_try, n))
    return guesses


def _most_in_an_hour(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 3600) for start in [*times, 0.0])


@pytest.mark.parametrize("pause", [False, True], ids=["greedy", "pausing"])
async def test_distributed_guessing_is_bounded_per_login_and_hour(
    db: AsyncSession, pause: bool
) -> None:
    addresses = 25
    bound = DEFAULTS.guesses_per_hour_bound(addresses)
    assert bound == 5 * addresses + 40  # the README's figure: 5A + 40
    guesses = await _attack(db, DEFAULTS, addresses, seconds=3 * 3600, pause=pause)
    most = _most_in_an_hour(guesses)
    assert most <= bound
    if not pause:
        # Greedy, every address gets its five guesses an hour: the bound is the real figure.
        assert most >= 5 * addresses


def test_failures_may_not_be_forgotten_before_the_longest_wait_is_over() -> None:
    with pytest.raises(ValidationError, match="LOGIN_THROTTLE_WINDOW_SECONDS"):
        Settings(login_throttle_window_seconds=60, login_throttle_max_seconds=900)
