"""Brute-force throttling of sign-ins, decided in the database before a password is checked.

Three counters per attempt, rows of `login_throttles` that every replica shares:

- `pair`: one login name from one client address. Refuses: after `free_per_pair` failures
  each further one makes the next attempt wait, doubling from `base` to `max` seconds.
- `address`: one client address, every login name. Refuses, the same way after
  `free_per_address` failures.
- `login`: one login name from every address. Never refuses, so an attacker cannot keep
  the owner out. Past `free_per_login` failures the login counts as targeted: from then on
  an address's first failure on it makes that pair wait `targeted_first_wait` seconds (a
  few: the owner's typo), every further one the longest wait (`max`). Each attacking
  address gets about one guess per `max` seconds, while the owner, from an address that
  has not been failing, signs in at once (or after one short wait, after a typo).

Reserve before checking: one statement per key both tests and counts (an upsert that
matches nothing while the key is blocked, and otherwise counts the attempt as a failure
and sets the wait the next attempt meets). So simultaneous guesses queue on the row and
get no more checks than the same guesses one after another. A success releases what it
reserved: its pair is cleared, its address and login counts lose the attempt again.

Login names are keyed after `accounts.normalize_login`, whether an account has that name
or not, so the throttle answers alike for existing and unknown logins, however spelled.
Failures are forgotten after `window` seconds without a failure and without a wait.

These functions write in the caller's transaction and never commit: the sign-in
operation commits the reservation before it checks the password.
"""

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, func, literal, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import LoginThrottle
from service_kit.db import dialect_insert

_MAX_DOUBLINGS = 30
_HOUR = 3600


@dataclass(frozen=True)
class ThrottlePolicy:
    """The throttle's settings (LOGIN_* in the README)."""

    free_per_pair: int
    free_per_address: int
    free_per_login: int
    base_seconds: float
    max_seconds: float
    window_seconds: float
    targeted_first_wait_seconds: float = 5.0

    def delay(self, failures: int, free: int) -> float:
        """Seconds to block after the `failures`-th failure (0 while they are free)."""
        if failures <= free:
            return 0.0
        doublings = min(failures - free - 1, _MAX_DOUBLINGS)
        return float(min(self.base_seconds * 2**doublings, self.max_seconds))

    def guesses_per_hour_bound(self, addresses: int) -> int:
        """The most password checks one login name can get in any hour from `addresses`
        attacking addresses (the README's figure).

        Once the login is targeted, an address's guesses are `max` seconds apart but for
        the one after its first failure (a short wait); a pair's count restarts only after
        a quiet window following its wait. So at most ceil(3600 / max) + 1 guesses per
        address in an hour. Before that, at most `free_per_login` failures count as
        untargeted, and the login's count restarts only after `window` quiet seconds,
        which can happen at most ceil(3600 / window) - 1 times in an hour. (It needs
        window >= max, which the settings enforce: otherwise a pair would be forgotten,
        and its guesses cheap again, before its longest wait is over.)
        """
        per_address = math.ceil(_HOUR / self.max_seconds) + 1
        untargeted_runs = math.ceil(_HOUR / self.window_seconds)
        return per_address * addresses + untargeted_runs * self.free_per_login


def _hashed(kind: str, *parts: str) -> str:
    # What was typed as a login may be a password typed in the wrong field: never stored.
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{kind}:{digest}"


def address_key(address: str | None) -> str:
    """The client address; IPv6 by /64, as one host is usually given a whole /64."""
    if not address:
        return "address:unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"address:{address[:64]}"
    if ip.version == 6:
        return f"address:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"address:{ip}"


@dataclass(frozen=True)
class SignInKeys:
    """The three throttle keys of one sign-in attempt."""

    login: str
    pair: str
    address: str

    @classmethod
    def of(cls, normalized_login: str, client_address: str | None) -> "SignInKeys":
        """Keys for a login name (already normalised) tried from a client address."""
        address = address_key(client_address)
        return cls(
            login=_hashed("login", normalized_login),
            pair=_hashed("pair", normalized_login, address),
            address=address,
        )


@dataclass(frozen=True)
class ClientKeys:
    """The throttle keys of a client authentication: the client id from one address, and
    the address itself (the same key as its sign-ins: one count of failures per address)."""

    pair: str
    address: str

    @classmethod
    def of(cls, client_id: str, client_address: str | None) -> "ClientKeys":
        address = address_key(client_address)
        return cls(pair=_hashed("client-pair", client_id, address), address=address)


@dataclass(frozen=True)
class MailKeys:
    """The throttle keys of a request that mails a link: the email address it names (the
    same key whether an account has it or not) and the client address."""

    recipient: str
    address: str

    @classmethod
    def of(cls, normalized_email: str, client_address: str | None) -> "MailKeys":
        return cls(
            recipient=_hashed("mail-recipient", normalized_email),
            address=f"mail-{address_key(client_address)}",
        )


class ThrottledError(Exception):
    """The attempt was refused before any password check; retry after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"throttled for {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reservation:
    """What `reserve` counted, so that a success can release exactly that."""

    keys: SignInKeys
    # The waits this attempt set, by key (None: it set none).
    blocks: dict[str, datetime | None]
    targeted: bool


def _insert(db: AsyncSession) -> Any:
    return dialect_insert(db.get_bind().dialect.name)


def _at(moment: datetime) -> Any:
    return literal(moment, LoginThrottle.blocked_until.type)


async def _count(
    db: AsyncSession,
    key: str,
    policy: ThrottlePolicy,
    now: datetime,
    *,
    free: int | None,
    refuse_while_blocked: bool,
) -> tuple[int, datetime | None] | None:
    """The one atomic statement per key: count an attempt and set the next wait, unless
    the key is blocked (then nothing is written and None is returned).

    `free` None is a targeted login's pair: its first failure waits the short wait, every
    further one the longest. A key that never refuses sets no wait at all.
    """
    window_start = now - timedelta(seconds=policy.window_seconds)
    forgotten = func.coalesce(LoginThrottle.blocked_until, LoginThrottle.last_failure_at) < (
        window_start
    )
    count = case((forgotten, 1), else_=LoginThrottle.failures + 1)

    def seconds_after(failures: int) -> float:
        if free is not None:
            return policy.delay(failures, free)
        return policy.targeted_first_wait_seconds if failures == 1 else policy.max_seconds

    def wait_after(failures: Any) -> Any:
        if not refuse_while_blocked:
            return null()
        # The waits, unrolled into a CASE over the new count: portable to SQLite, which
        # has no power(), and short, as the doubling reaches the cap in a few steps.
        whens: list[tuple[Any, Any]] = []
        for failures_at in range(1, (free or 0) + _MAX_DOUBLINGS + 2):
            seconds = seconds_after(failures_at)
            if seconds >= policy.max_seconds:
                break
            moment = null() if seconds == 0 else _at(now + timedelta(seconds=seconds))
            whens.append((failures == failures_at, moment))
        last = _at(now + timedelta(seconds=seconds_after(len(whens) + 1)))
        return case(*whens, else_=last) if whens else last

    first_wait = seconds_after(1) if refuse_while_blocked else 0
    first_block = now + timedelta(seconds=first_wait) if first_wait else None
    statement = (
        _insert(db)(LoginThrottle)
        .values(key=key, failures=1, last_failure_at=now, blocked_until=first_block)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={"failures": count, "last_failure_at": now, "blocked_until": wait_after(count)},
            where=(
                or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now)
                if refuse_while_blocked
                else None
            ),
        )
        .returning(LoginThrottle.failures, LoginThrottle.blocked_until)
    )
    row = (await db.execute(statement)).first()
    return None if row is None else (row[0], row[1])


async def reserve(
    db: AsyncSession, keys: SignInKeys, policy: ThrottlePolicy, now: datetime
) -> Reservation:
    """Count this attempt as a failure on its three keys, or raise `ThrottledError`.

    Keys are written in one order (login, pair, address), so concurrent attempts never
    deadlock. After a `ThrottledError` the caller must roll back: the keys counted before
    the refusal must not keep the count.
    """
    counted = await _count(db, keys.login, policy, now, free=None, refuse_while_blocked=False)
    assert counted is not None  # a key that never refuses always counts
    targeted = counted[0] > policy.free_per_login
    blocks: dict[str, datetime | None] = {keys.login: None}
    for key, free in (
        (keys.pair, None if targeted else policy.free_per_pair),
        (keys.address, policy.free_per_address),
    ):
        counted = await _count(db, key, policy, now, free=free, refuse_while_blocked=True)
        if counted is None:
            raise ThrottledError(await _retry_after(db, [keys.pair, keys.address], now))
        blocks[key] = counted[1]
    return Reservation(keys, blocks, targeted)


async def _retry_after(db: AsyncSession, keys: list[str], now: datetime) -> int:
    blocked_until = await db.scalar(
        select(func.max(LoginThrottle.blocked_until)).where(
            LoginThrottle.key.in_(keys), LoginThrottle.blocked_until > now
        )
    )
    if blocked_until is None:  # the wait ended between the two statements
        return 1
    return seconds_until(blocked_until, now)


async def release(db: AsyncSession, reservation: Reservation) -> None:
    """After a correct password: clear the pair, and take the attempt back from the
    address and login counts (a wait this attempt set is lifted, a later one's is kept).

    Rows are written in `reserve`'s order (login, pair, address): a release and a
    concurrent reservation of the same keys queue instead of deadlocking.
    """
    keys = reservation.keys
    for key in (keys.login, keys.pair, keys.address):
        if key == keys.pair:
            await db.execute(
                delete(LoginThrottle)
                .where(LoginThrottle.key == key)
                .execution_options(synchronize_session=False)
            )
            continue
        ours = reservation.blocks.get(key)
        values: dict[str, Any] = {
            "failures": case((LoginThrottle.failures > 0, LoginThrottle.failures - 1), else_=0)
        }
        if ours is not None:
            values["blocked_until"] = case(
                (LoginThrottle.blocked_until == _at(ours), null()),
                else_=LoginThrottle.blocked_until,
            )
        await db.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


# When a client authentication's keys (bound as `pair` and `address`) are blocked until, at
# `now`: a scalar subquery, built once, for the authentication's one read (`client_auth`).
# Client secrets and assertions are not guessable (256 random bits, a signature), so they
# need no reservation: the wait is decided before the credential is checked, and a failure
# counts afterwards (`count_client_failure`), which leaves the success path without a write.
CLIENT_BLOCKED_UNTIL = (
    select(func.max(LoginThrottle.blocked_until))
    .where(
        LoginThrottle.key.in_([bindparam("pair"), bindparam("address")]),
        LoginThrottle.blocked_until > bindparam("now"),
    )
    .scalar_subquery()
)


def seconds_until(blocked_until: datetime, now: datetime) -> int:
    """A wait in whole seconds, at least one (for Retry-After)."""
    return max(1, math.ceil((blocked_until - now).total_seconds()))


async def count_client_failure(
    db: AsyncSession, keys: ClientKeys, policy: ThrottlePolicy, now: datetime
) -> None:
    """Count a failed client authentication, as a failed sign-in counts: the client from
    that address after `free_per_pair` failures, the address after `free_per_address`."""
    for key, free in ((keys.pair, policy.free_per_pair), (keys.address, policy.free_per_address)):
        await _count(db, key, policy, now, free=free, refuse_while_blocked=True)


async def count_mail_request(
    db: AsyncSession, keys: MailKeys, policy: ThrottlePolicy, now: datetime
) -> None:
    """Count a request that mails a link, or raise `ThrottledError` (the caller rolls back):
    an email address after `free_per_pair` requests, a client address after
    `free_per_address`, then waits doubling from `base` up to `max` seconds."""
    for key, free in (
        (keys.recipient, policy.free_per_pair),
        (keys.address, policy.free_per_address),
    ):
        counted = await _count(db, key, policy, now, free=free, refuse_while_blocked=True)
        if counted is None:
            raise ThrottledError(await _retry_after(db, [keys.recipient, keys.address], now))
