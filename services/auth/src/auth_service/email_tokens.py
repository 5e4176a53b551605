"""Single-use tokens mailed to an account's address: to verify it, or to reset the password.

Random (`secrets.token_urlsafe`, 256 bits), stored only as SHA-256 hashes, valid for
EMAIL_TOKEN_TTL_SECONDS (at most 30 minutes), spent by one compare-and-set (`UPDATE … SET
used_at = now WHERE token_hash = :hash AND used_at IS NULL AND unexpired`): of any number of
concurrent uses, one succeeds. These functions write in the caller's transaction and never
commit.
"""

import secrets
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import EmailToken
from auth_service.sign_in_sessions import TOKEN_BYTES, hash_token, well_formed


class Purpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password


def issue(
    db: AsyncSession, account_id: uuid.UUID, purpose: Purpose, ttl: timedelta, now: datetime
) -> str:
    """A new token for the account, its hash added to `db`'s unit of work; the token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.add(
        EmailToken(
            token_hash=hash_token(token),
            account_id=account_id,
            purpose=purpose.value,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


def _usable(token: str, purpose: Purpose, now: datetime) -> ColumnElement[bool]:
    return and_(
        EmailToken.token_hash == hash_token(token),
        EmailToken.purpose == purpose.value,
        EmailToken.used_at.is_(None),
        EmailToken.expires_at > now,
    )


async def holder(db: AsyncSession, token: str, purpose: Purpose, now: datetime) -> uuid.UUID | None:
    """The account of a usable token, without spending it; None for any other string."""
    if not well_formed(token):
        return None
    found: uuid.UUID | None = await db.scalar(
        select(EmailToken.account_id).where(_usable(token, purpose, now))
    )
    return found


async def spend(db: AsyncSession, token: str, purpose: Purpose, now: datetime) -> uuid.UUID | None:
    """Spend a usable token (the compare-and-set); its account, or None when it is
    unknown, expired, already spent, or of another purpose."""
    if not well_formed(token):
        return None
    spent = (
        await db.execute(
            update(EmailToken)
            .where(_usable(token, purpose, now))
            .values(used_at=now)
            .returning(EmailToken.account_id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    return None if spent is None else spent[0]


async def spend_all(
    db: AsyncSession, account_id: uuid.UUID, purpose: Purpose, now: datetime
) -> None:
    """Spend every outstanding token of the account for `purpose` (a reset done, say)."""
    await db.execute(
        update(EmailToken)
        .where(
            EmailToken.account_id == account_id,
            EmailToken.purpose == purpose.value,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
