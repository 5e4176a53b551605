"""Email verification: a signed-in account asks for a link to its address; the token the
link carries marks the address verified. Each function is an operation: it commits.

Access tokens issued from then on carry `email_verified: true` (ID tokens and userinfo take
it from `accounts.email_claims`).
"""

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, email_tokens, throttling
from auth_service.accounts import normalize_login
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.email_tokens import Purpose
from auth_service.mail import MailedLinks, MailKind, compose
from auth_service.models import Account
from auth_service.throttling import MailKeys


class InvalidEmailTokenError(Exception):
    """The mailed token is unknown, expired, spent, or of another purpose."""


async def request_verification(
    db: AsyncSession, links: MailedLinks, account: Account, *, client_address: str | None
) -> bool:
    """Mail a verification link to the account's address, throttled as a reset request
    is (`ThrottledError`); False, and nothing mailed, when it is verified already."""
    now = utcnow()
    try:
        keys = MailKeys.of(normalize_login(account.email), client_address)
        await throttling.count_mail_request(db, keys, links.throttle, now)
    except throttling.ThrottledError:
        await db.rollback()
        raise
    if account.email_verified:
        await db.commit()
        return False
    token = email_tokens.issue(db, account.id, Purpose.VERIFY_EMAIL, links.token_ttl, now)
    composed = compose(
        MailKind.EMAIL_VERIFICATION,
        email=account.email,
        link=links.outbox.link("verify-email", token),
        token=token,
        minutes=links.minutes,
    )
    links.outbox.enqueue(db, account.email, composed, now=now)
    audit.record(
        db,
        Event.EMAIL_VERIFICATION_REQUESTED,
        now=now,
        account_id=account.id,
        client_address=client_address,
    )
    await db.commit()
    return True


async def verify_email(db: AsyncSession, token: str, *, client_address: str | None) -> Account:
    """Spend a verification token and mark its account's address verified; the account.
    `InvalidEmailTokenError` (nothing changed) for any token that cannot be used."""
    now = utcnow()
    account_id = await email_tokens.spend(db, token, Purpose.VERIFY_EMAIL, now)
    account = await db.get(Account, account_id) if account_id is not None else None
    if account is None:
        await db.rollback()
        raise InvalidEmailTokenError
    if not account.email_verified:
        account.email_verified = True
        account.updated_at = now
        audit.record(
            db, Event.EMAIL_VERIFIED, now=now, account_id=account.id, client_address=client_address
        )
    await db.commit()
    return account
