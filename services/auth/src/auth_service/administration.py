"""Account administration: disable, enable, grant and revoke roles.

One implementation for the operator's CLI (`auth-service accounts …`) and the admin API to
come. Each function is an operation: it commits, and it writes an audit event naming who
acted (`actor`: "cli", or the administrator's account id), in the same transaction as the
change.
"""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit
from auth_service.accounts import AccountNotFoundError, check_role, find_by_login
from auth_service.audit import Event
from auth_service.models import Account
from auth_service.sessions import RevokedReason, revoke_account_sessions


async def find_account(db: AsyncSession, login_or_id: str) -> Account:
    """The account named by its id, email or username; `AccountNotFoundError` if none."""
    try:
        account = await db.get(Account, uuid.UUID(login_or_id))
    except ValueError:
        account = await find_by_login(db, login_or_id)
    if account is None:
        raise AccountNotFoundError(login_or_id)
    return account


async def _account(db: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await db.get(Account, account_id)
    if account is None:
        raise AccountNotFoundError(str(account_id))
    return account


async def disable(db: AsyncSession, account_id: uuid.UUID, *, actor: str, now: datetime) -> Account:
    """Refuse the account every sign-in and every refresh, and revoke all its sessions (its
    access tokens stop working on auth's own endpoints at once). Idempotent."""
    account = await _account(db, account_id)
    revoked = await revoke_account_sessions(db, account.id, RevokedReason.ACCOUNT_DISABLED, now)
    if not account.disabled or revoked:
        account.disabled = True
        account.updated_at = now
        audit.record(
            db,
            Event.ACCOUNT_DISABLED,
            now=now,
            account_id=account.id,
            actor=actor,
            sessions_revoked=revoked,
        )
    await db.commit()
    return account


async def enable(db: AsyncSession, account_id: uuid.UUID, *, actor: str, now: datetime) -> Account:
    """Let a disabled account sign in again (its revoked sessions stay revoked)."""
    account = await _account(db, account_id)
    if account.disabled:
        account.disabled = False
        account.updated_at = now
        audit.record(db, Event.ACCOUNT_ENABLED, now=now, account_id=account.id, actor=actor)
    await db.commit()
    return account


async def grant_role(
    db: AsyncSession, account_id: uuid.UUID, role: str, *, actor: str, now: datetime
) -> Account:
    """Add a role; tokens carry it from the account's next sign-in or refresh."""
    role = check_role(role)
    account = await _account(db, account_id)
    if role not in account.roles:
        account.roles = sorted({*account.roles, role})
        account.updated_at = now
        audit.record(db, Event.ROLE_GRANTED, now=now, account_id=account.id, role=role, actor=actor)
    await db.commit()
    return account


async def revoke_role(
    db: AsyncSession, account_id: uuid.UUID, role: str, *, actor: str, now: datetime
) -> Account:
    """Remove a role. The next refresh issues tokens without it; access tokens already
    issued keep it until they expire (at most ACCESS_TOKEN_TTL_SECONDS): `disable` is the
    way to cut an account off at once."""
    role = check_role(role)
    account = await _account(db, account_id)
    if role in account.roles:
        account.roles = sorted(set(account.roles) - {role})
        account.updated_at = now
        audit.record(db, Event.ROLE_REVOKED, now=now, account_id=account.id, role=role, actor=actor)
    await db.commit()
    return account
