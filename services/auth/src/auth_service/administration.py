"""Administration: accounts (disable, enable, delete, grant, revoke and set roles), signing
keys (rotate, retire, revoke) and the retention purge.

One implementation for the operator's CLI (`auth-service accounts …`, `keys …`, `purge`) and
the admin API (`/auth/admin/…`); an account's own deletion (`DELETE /auth/account`) is
`delete_account` too. Each public function but `find_account` is an operation: it commits,
and it writes an audit event naming who acted (`actor`: "cli", or the administrator's
account id), in the same transaction as the change.
"""

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, keys, retention
from auth_service.accounts import AccountNotFoundError, check_role, find_by_login
from auth_service.audit import Event
from auth_service.key_encryption import KeyEncryption
from auth_service.keys import KeyTimings, Revocation
from auth_service.models import Account, RefreshToken, SigningKey, SignInSession
from auth_service.retention import Purged, RetentionPolicy
from auth_service.sign_in_sessions import RevokedReason, revoke_account_sessions
from service_kit.db import Database


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


async def delete_account(
    db: AsyncSession, account_id: uuid.UUID, *, actor: str, now: datetime
) -> None:
    """Erase the account: its row, its sessions and refresh tokens are deleted (its access
    tokens stop working on auth's own endpoints at once); its audit events keep only ids
    and event types, and an `account_deleted` event says who erased it."""
    account = await _account(db, account_id)
    revoked = await revoke_account_sessions(db, account.id, RevokedReason.ACCOUNT_DELETED, now)
    sessions = select(SignInSession.id).where(SignInSession.account_id == account.id)
    await db.execute(
        delete(RefreshToken)
        .where(RefreshToken.family_id.in_(sessions))
        .execution_options(synchronize_session=False)
    )
    await db.execute(
        delete(SignInSession)
        .where(SignInSession.account_id == account.id)
        .execution_options(synchronize_session=False)
    )
    await audit.erase_personal_data(db, account.id)
    await db.delete(account)
    audit.record(
        db,
        Event.ACCOUNT_DELETED,
        now=now,
        account_id=account_id,
        actor=actor,
        sessions_revoked=revoked,
    )
    await db.commit()


async def set_roles(
    db: AsyncSession, account_id: uuid.UUID, roles: list[str], *, actor: str, now: datetime
) -> Account:
    """Give the account exactly these roles; each one granted or revoked is audited. Tokens
    follow from the next sign-in or refresh (see `revoke_role`)."""
    wanted = {check_role(role) for role in roles}
    account = await _account(db, account_id)
    for role in sorted(wanted - set(account.roles)):
        audit.record(db, Event.ROLE_GRANTED, now=now, account_id=account.id, role=role, actor=actor)
    for role in sorted(set(account.roles) - wanted):
        audit.record(db, Event.ROLE_REVOKED, now=now, account_id=account.id, role=role, actor=actor)
    if wanted != set(account.roles):
        account.roles = sorted(wanted)
        account.updated_at = now
    await db.commit()
    return account


async def grant_role(
    db: AsyncSession, account_id: uuid.UUID, role: str, *, actor: str, now: datetime
) -> Account:
    """Add a role; tokens carry it from the account's next sign-in or refresh."""
    role = check_role(role)
    account = await _account(db, account_id)
    return await set_roles(db, account.id, [*account.roles, role], actor=actor, now=now)


async def revoke_role(
    db: AsyncSession, account_id: uuid.UUID, role: str, *, actor: str, now: datetime
) -> Account:
    """Remove a role. The next refresh issues tokens without it; access tokens already
    issued keep it until they expire (at most ACCESS_TOKEN_TTL_SECONDS): `disable` is the
    way to cut an account off at once."""
    role = check_role(role)
    account = await _account(db, account_id)
    remaining = [kept for kept in account.roles if kept != role]
    return await set_roles(db, account.id, remaining, actor=actor, now=now)


async def rotate_key(
    db: AsyncSession, encryption: KeyEncryption, timings: KeyTimings, *, actor: str, now: datetime
) -> SigningKey:
    """Add a `next` key, published now, signing once the publish delay is over."""
    key = await keys.rotate(db, encryption, timings)
    audit.record(db, Event.KEY_ROTATED, now=now, kid=key.kid, actor=actor)
    await db.commit()
    return key


async def retire_key(
    db: AsyncSession, kid: str, timings: KeyTimings, *, actor: str, now: datetime
) -> SigningKey:
    """Retire a key: published until every token it signed has expired, then gone."""
    key = await keys.retire(db, kid, timings)
    audit.record(db, Event.KEY_RETIRED, now=now, kid=key.kid, actor=actor)
    await db.commit()
    return key


async def revoke_key(
    db: AsyncSession, encryption: KeyEncryption, kid: str, *, actor: str, now: datetime
) -> Revocation:
    """Pull a compromised key out of the key set at once, another signing in its place."""
    revocation = await keys.revoke(db, encryption, kid, now)
    replacement = revocation.replacement.kid if revocation.replacement else None
    audit.record(
        db,
        Event.KEY_REVOKED,
        now=now,
        kid=revocation.revoked.kid,
        replacement=replacement,
        actor=actor,
    )
    await db.commit()
    return revocation


async def purge(
    database: Database, policy: RetentionPolicy, *, actor: str, now: datetime
) -> Purged:
    """`retention.purge` (each batch its own transaction), then its audit event."""
    purged = await retention.purge(database, policy, now)
    async with database.db_session() as db:
        audit.record(db, Event.DATA_PURGED, now=now, actor=actor, **purged.as_dict())
        await db.commit()
    return purged
