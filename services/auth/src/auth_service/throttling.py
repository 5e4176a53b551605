"""Brute-force throttling: failed sign-ins counted in the database, per account and per
client address, so that every replica sees the same counts.

After a few free failures each further one blocks that key for exponentially longer
(capped). It throttles and never locks out: once the wait is over a correct password works,
and a success clears the account's count.
"""

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import LoginThrottle

_MAX_DOUBLINGS = 30


@dataclass(frozen=True)
class ThrottlePolicy:
    free_per_account: int
    free_per_address: int
    base_seconds: float
    max_seconds: float
    window_seconds: float

    def delay(self, failures: int, free: int) -> float:
        """Seconds to block after the `failures`-th failure (0 while they are free)."""
        if failures <= free:
            return 0.0
        doublings = min(failures - free - 1, _MAX_DOUBLINGS)
        return float(min(self.base_seconds * 2**doublings, self.max_seconds))


def account_key(account_id: str | None, login: str) -> str:
    """The account's id; for an unknown login a hash of it (it might be a mistyped password)."""
    if account_id is not None:
        return f"account:{account_id}"
    return "account:?" + hashlib.sha256(login.casefold().encode()).hexdigest()


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


async def retry_after(db: AsyncSession, keys: list[str], now: datetime) -> int | None:
    """Whole seconds until the longest block on any of `keys` ends; None when none holds."""
    blocked_until = await db.scalar(
        select(func.max(LoginThrottle.blocked_until)).where(
            LoginThrottle.key.in_(keys), LoginThrottle.blocked_until > now
        )
    )
    if blocked_until is None:
        return None
    return max(1, math.ceil((blocked_until - now).total_seconds()))


async def record_failure(
    db: AsyncSession, key: str, free: int, policy: ThrottlePolicy, now: datetime
) -> None:
    """Count one failure for `key` atomically (an upsert) and block it when due."""
    window_start = now - timedelta(seconds=policy.window_seconds)
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(LoginThrottle)
        .values(key=key, failures=1, last_failure_at=now, blocked_until=None)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                # Failures older than the window are forgotten.
                "failures": case(
                    (LoginThrottle.last_failure_at < window_start, 1),
                    else_=LoginThrottle.failures + 1,
                ),
                "last_failure_at": now,
            },
        )
        .returning(LoginThrottle.failures)
    )
    failures = (await db.execute(statement)).scalar_one()
    delay = policy.delay(failures, free)
    if delay:
        await db.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == key)
            .values(blocked_until=now + timedelta(seconds=delay))
            .execution_options(synchronize_session=False)
        )


async def clear(db: AsyncSession, key: str) -> None:
    """Forget the failures of `key` (after a successful sign-in to that account)."""
    await db.execute(
        delete(LoginThrottle)
        .where(LoginThrottle.key == key)
        .execution_options(synchronize_session=False)
    )
