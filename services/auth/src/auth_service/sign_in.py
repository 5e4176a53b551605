"""The throttled password check: the one way a person proves a password, whatever asks.

The password grant, the current-password check of `POST /auth/password` (and a hosted
sign-in page, when there is one) all call `check_password`, so they share one throttle
and one behaviour: wrong password and unknown login take the same path (a dummy hash is
checked for an unknown one) and so answer the same, in the same time.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, throttling
from auth_service.accounts import find_by_login, normalize_login
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.models import Account
from auth_service.passwords import PasswordHasher
from auth_service.throttling import SignInKeys, ThrottledError, ThrottlePolicy

__all__ = ["BadCredentialsError", "PasswordAttempt", "ThrottledError", "check_password"]


class BadCredentialsError(Exception):
    """Wrong password, unknown login or disabled account: never says which."""


@dataclass(frozen=True)
class PasswordAttempt:
    """Who tries which password, from where, and why (for the audit trail)."""

    login: str
    password: str
    client_address: str | None
    purpose: str
    client_id: str | None = None


async def check_password(
    db: AsyncSession,
    hasher: PasswordHasher,
    policy: ThrottlePolicy,
    attempt: PasswordAttempt,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Account:
    """The account whose password this is, or `BadCredentialsError` / `ThrottledError`
    (`PasswordWorkBusyError` when the password checks' queue is full).

    The one function below an operation that commits, and it commits only what it wrote:
    it runs before its caller has written anything (checked), and the throttle needs two
    commits. The reservation is committed before the (slow) password check, so that every
    concurrent attempt already sees it, and a failure's audit event before the error is
    raised. On success nothing is committed: the reservation's release joins the caller's
    transaction, and the caller's operation commits it with its own writes.
    """
    if db.new or db.dirty or db.deleted:
        raise RuntimeError("check_password commits: call it before writing anything")
    # Refused before the throttle counts anything: an overload is nobody's failed attempt.
    with hasher.admission():
        return await _check_password(db, hasher, policy, attempt, clock)


async def _check_password(
    db: AsyncSession,
    hasher: PasswordHasher,
    policy: ThrottlePolicy,
    attempt: PasswordAttempt,
    clock: Callable[[], datetime],
) -> Account:
    login = normalize_login(attempt.login)
    keys = SignInKeys.of(login, attempt.client_address)
    try:
        reservation = await throttling.reserve(db, keys, policy, clock())
    except ThrottledError:
        await db.rollback()
        raise
    account = await find_by_login(db, login)
    await db.commit()  # publish the reservation; and hold no connection while hashing
    verified = await hasher.verify(attempt.password, account.password_hash if account else None)
    if not verified or account is None or account.disabled:
        audit.record(
            db,
            Event.LOGIN_FAILED,
            now=clock(),
            account_id=account.id if account else None,
            client_address=attempt.client_address,
            client_id=attempt.client_id,
            purpose=attempt.purpose,
            targeted=reservation.targeted,
        )
        await db.commit()
        raise BadCredentialsError
    await throttling.release(db, reservation)
    return account
