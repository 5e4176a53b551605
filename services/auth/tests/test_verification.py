"""Email verification without HTTP: a link per request (none once verified), a token that
verifies once."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, verification
from auth_service.accounts import PasswordRules, register
from auth_service.clock import utcnow
from auth_service.mail import MailedLinks, MailSealer, Outbox
from auth_service.models import Account, EmailToken, MailMessage
from auth_service.passwords import PasswordHasher
from auth_service.throttling import ThrottledError, ThrottlePolicy
from auth_service.verification import InvalidEmailTokenError
from testsupport.auth_service import STRONG_PASSWORD

pytestmark = pytest.mark.anyio

SEALER = MailSealer("a key-encryption key of the tests, long enough to be one")
LINKS = MailedLinks(
    Outbox(SEALER, "https://app.example"),
    token_ttl=timedelta(minutes=30),
    throttle=ThrottlePolicy(
        free_per_pair=1,
        free_per_address=100,
        free_per_login=2,
        base_seconds=60,
        max_seconds=900,
        window_seconds=900,
    ),
)


async def _account(db: AsyncSession) -> Account:
    await register(
        db,
        PasswordRules(PasswordHasher(4, 1), 0),
        email="vic@example.com",
        password=STRONG_PASSWORD,
        username=None,
        now=utcnow(),
    )
    return await administration.find_account(db, "vic@example.com")


async def _mailed_token(db: AsyncSession) -> str:
    message = (await db.scalars(select(MailMessage).order_by(MailMessage.created_at))).all()[-1]
    assert message.sealed is not None
    text = SEALER.open(message.id, message.sealed).text
    return text.split("?token=", 1)[1].split()[0]


async def test_the_token_and_its_message_are_written_together(db: AsyncSession) -> None:
    account = await _account(db)
    assert await verification.request_verification(db, LINKS, account, client_address=None)
    token = await _mailed_token(db)
    assert token not in str(await db.scalar(select(EmailToken.token_hash)))
    verified = await verification.verify_email(db, token, client_address=None)
    assert verified.email_verified is True
    with pytest.raises(InvalidEmailTokenError):
        await verification.verify_email(db, token, client_address=None)


async def test_a_verified_address_gets_no_more_links(db: AsyncSession) -> None:
    account = await _account(db)
    await verification.request_verification(db, LINKS, account, client_address=None)
    await verification.verify_email(db, await _mailed_token(db), client_address=None)
    account = await administration.find_account(db, "vic@example.com")
    assert not await verification.request_verification(db, LINKS, account, client_address=None)
    assert await db.scalar(select(func.count()).select_from(MailMessage)) == 1


async def test_requests_are_throttled_per_address(db: AsyncSession) -> None:
    account = await _account(db)
    for _ in range(2):
        await verification.request_verification(db, LINKS, account, client_address="192.0.2.9")
        account = await administration.find_account(db, "vic@example.com")
    with pytest.raises(ThrottledError):
        await verification.request_verification(db, LINKS, account, client_address="192.0.2.10")
    assert await db.scalar(select(func.count()).select_from(MailMessage)) == 2
