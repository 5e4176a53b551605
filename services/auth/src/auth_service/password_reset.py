"""Password reset by a mailed link. Each public function is an operation: it commits.

`forgot_password` answers in the same time whether or not an account has the address: it
only counts the request in the throttle (the same statements for any address); what depends
on the account (looking it up, the token, the message) is `mail_reset_link`, which the route
runs after answering. `reset_password` spends the token, sets the new password (the same
rules as everywhere), revokes every session and is audited.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, email_tokens, throttling
from auth_service.accounts import PasswordRules, find_by_login, normalize_login
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.email_tokens import Purpose
from auth_service.mail import MailedLinks, MailKind, compose
from auth_service.models import Account
from auth_service.sign_in_sessions import RevokedReason, revoke_account_sessions
from auth_service.throttling import MailKeys
from auth_service.verification import InvalidEmailTokenError
from service_kit.db import Database

__all__ = ["InvalidEmailTokenError", "forgot_password", "mail_reset_link", "reset_password"]


async def forgot_password(
    db: AsyncSession, links: MailedLinks, email: str, *, client_address: str | None
) -> None:
    """Count a reset request for `email` from `client_address`, or raise `ThrottledError`
    (per address asked for and per client address, whether an account has it or not)."""
    keys = MailKeys.of(normalize_login(email), client_address)
    try:
        await throttling.count_mail_request(db, keys, links.throttle, utcnow())
    except throttling.ThrottledError:
        await db.rollback()
        raise
    await db.commit()


async def mail_reset_link(
    database: Database, links: MailedLinks, email: str, *, client_address: str | None
) -> None:
    """Mail a reset link to the account that has this address, if one does and it is
    enabled: the token and the message in one transaction."""
    async with database.db_session() as db:
        account = await find_by_login(db, email) if "@" in email else None
        if account is None or account.disabled:
            return
        now = utcnow()
        token = email_tokens.issue(db, account.id, Purpose.RESET_PASSWORD, links.token_ttl, now)
        composed = compose(
            MailKind.PASSWORD_RESET,
            email=account.email,
            link=links.outbox.link("reset-password", token),
            token=token,
            minutes=links.minutes,
        )
        links.outbox.enqueue(db, account.email, composed, now=now)
        audit.record(
            db,
            Event.PASSWORD_RESET_REQUESTED,
            now=now,
            account_id=account.id,
            client_address=client_address,
        )
        await db.commit()


async def reset_password(
    db: AsyncSession,
    rules: PasswordRules,
    token: str,
    new_password: str,
    *,
    client_address: str | None,
) -> int:
    """Set a new password with a mailed token and revoke every session; how many.

    `InvalidEmailTokenError` for a token that cannot be used (or an account disabled
    since), `PasswordPolicyError` for a password the rules refuse: either way nothing
    changed and a good token stays usable.
    """
    account_id = await email_tokens.holder(db, token, Purpose.RESET_PASSWORD, utcnow())
    account = await db.get(Account, account_id) if account_id is not None else None
    if account is None or account.disabled:
        await db.rollback()
        raise InvalidEmailTokenError
    email, username = account.email, account.username
    # End the read: no connection is held while the password is checked and hashed.
    await db.rollback()
    await rules.hasher.check_policy(
        new_password, personal=[email, username or ""], min_score=rules.min_score
    )
    password_hash = await rules.hasher.hash(new_password)
    now = utcnow()
    spent = await email_tokens.spend(db, token, Purpose.RESET_PASSWORD, now)
    account = await db.get(Account, spent) if spent is not None else None
    if account is None or account.disabled:  # spent by a concurrent reset, or disabled
        await db.rollback()
        raise InvalidEmailTokenError
    account.password_hash = password_hash
    account.password_changed_at = now
    account.updated_at = now
    await email_tokens.spend_all(db, account.id, Purpose.RESET_PASSWORD, now)
    revoked = await revoke_account_sessions(db, account.id, RevokedReason.PASSWORD_RESET, now)
    audit.record(
        db,
        Event.PASSWORD_RESET,
        now=now,
        account_id=account.id,
        client_address=client_address,
        sessions_revoked=revoked,
    )
    await db.commit()
    return revoked
