"""What a signed-in account does with its credentials and sessions: change its password,
revoke one session or all of them, or erase itself. Each function is an operation: it
commits.

The current password goes through `sign_in.check_password`, the throttled check a sign-in
uses: a stolen access token cannot be used to guess it faster than a sign-in could.
"""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, audit
from auth_service.accounts import PasswordRules
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.models import Account
from auth_service.passwords import PasswordPolicyError
from auth_service.sign_in import PasswordAttempt, check_password
from auth_service.sign_in_sessions import (
    RevokedReason,
    revoke_account_sessions,
    revoke_live_session,
)
from auth_service.throttling import ThrottlePolicy


async def change_password(
    db: AsyncSession,
    rules: PasswordRules,
    throttle: ThrottlePolicy,
    account: Account,
    *,
    current_password: str,
    new_password: str,
    keep_session: uuid.UUID | None,
    client_address: str | None,
) -> int:
    """Set a new password and revoke every session but `keep_session`; how many it revoked.

    Refused with `ThrottledError` or `BadCredentialsError` (the current password, checked
    as a sign-in is) or `PasswordPolicyError` (the new one), changing nothing.
    """
    attempt = PasswordAttempt(account.email, current_password, client_address, "password_change")
    await check_password(db, rules.hasher, throttle, attempt)
    try:
        await rules.hasher.check_policy(
            new_password,
            personal=[account.email, account.username or ""],
            min_score=rules.min_score,
        )
        if await rules.hasher.verify(new_password, account.password_hash):
            raise PasswordPolicyError(
                "password_unchanged", "The new password must differ from the current one."
            )
    except PasswordPolicyError:
        # What is left to commit is the throttle's release: the current password was right.
        await db.commit()
        raise
    now = utcnow()
    account.password_hash = await rules.hasher.hash(new_password)
    account.password_changed_at = now
    account.updated_at = now
    revoked = await revoke_account_sessions(
        db, account.id, RevokedReason.PASSWORD_CHANGED, now, keep=keep_session
    )
    audit.record(
        db,
        Event.PASSWORD_CHANGED,
        now=now,
        account_id=account.id,
        client_address=client_address,
        sessions_revoked=revoked,
    )
    await db.commit()
    return revoked


async def sign_out_everywhere(
    db: AsyncSession, account_id: uuid.UUID, *, client_address: str | None
) -> int:
    """Revoke every session of the account, the caller's own included; how many."""
    now = utcnow()
    revoked = await revoke_account_sessions(db, account_id, RevokedReason.LOGOUT_ALL, now)
    audit.record(
        db,
        Event.LOGGED_OUT_EVERYWHERE,
        now=now,
        account_id=account_id,
        client_address=client_address,
        sessions_revoked=revoked,
    )
    await db.commit()
    return revoked


async def revoke_own_session(
    db: AsyncSession,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    *,
    client_address: str | None,
) -> bool:
    """Revoke one of the account's live sessions (the caller's own, too); False, and
    nothing changed, when it has no such session: another account's is not its to end."""
    now = utcnow()
    revoked = await revoke_live_session(db, account_id, session_id, RevokedReason.REVOKED, now)
    if revoked:
        audit.record(
            db,
            Event.SESSION_REVOKED,
            now=now,
            account_id=account_id,
            client_address=client_address,
            session_id=str(session_id),
        )
    await db.commit()
    return revoked


async def delete_own_account(
    db: AsyncSession,
    throttle: ThrottlePolicy,
    rules: PasswordRules,
    account: Account,
    *,
    password: str,
    client_address: str | None,
) -> None:
    """Erase the account (`administration.delete_account`) once its password is proven,
    through the throttled check a sign-in uses: `ThrottledError` or `BadCredentialsError`
    change nothing."""
    attempt = PasswordAttempt(account.email, password, client_address, "account_deletion")
    await check_password(db, rules.hasher, throttle, attempt)
    await administration.delete_account(db, account.id, actor=str(account.id), now=utcnow())
