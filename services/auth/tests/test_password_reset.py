"""Password reset without HTTP: the request's answer does the same work whoever has the
address; a token resets once, for an enabled account, within the password rules."""

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, email_tokens, password_reset
from auth_service.accounts import PasswordRules, register
from auth_service.clock import utcnow
from auth_service.email_tokens import Purpose
from auth_service.mail import MailedLinks, MailSealer, Outbox
from auth_service.models import AuditEvent, MailMessage
from auth_service.passwords import PasswordHasher, PasswordPolicyError
from auth_service.throttling import ThrottledError, ThrottlePolicy
from auth_service.verification import InvalidEmailTokenError
from service_kit.db import Database
from testsupport.auth_service import OTHER_STRONG_PASSWORD, STRONG_PASSWORD

pytestmark = pytest.mark.anyio

RULES = PasswordRules(PasswordHasher(4, 2), 3)
LINKS = MailedLinks(
    Outbox(MailSealer("a key-encryption key of the tests, long enough to be one"), "https://a"),
    token_ttl=timedelta(minutes=30),
    throttle=ThrottlePolicy(
        free_per_pair=2,
        free_per_address=100,
        free_per_login=3,
        base_seconds=60,
        max_seconds=900,
        window_seconds=900,
    ),
)


@pytest.fixture
def statements(database: Database) -> Iterator[list[str]]:
    """Every SQL statement the database runs, with its parameters' names (not values)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(database.engine.sync_engine, "before_cursor_execute", record)


async def _register(db: AsyncSession, email: str) -> None:
    await register(db, RULES, email=email, password=STRONG_PASSWORD, username=None, now=utcnow())


async def test_forgot_answers_after_the_same_statements_whoever_has_the_address(
    database: Database, statements: list[str]
) -> None:
    async with database.db_session() as db:
        await _register(db, "known@example.com")
    runs = []
    for email in ("known@example.com", "unknown@example.com"):
        statements.clear()
        async with database.db_session() as db:
            await password_reset.forgot_password(db, LINKS, email, client_address="192.0.2.1")
        runs.append(list(statements))
    assert runs[0] == runs[1]
    assert not any("accounts" in statement for statement in runs[0])


async def test_the_link_is_mailed_only_to_an_enabled_account(database: Database) -> None:
    async with database.db_session() as db:
        await _register(db, "on@example.com")
        await _register(db, "off@example.com")
        off = await administration.find_account(db, "off@example.com")
        await administration.disable(db, off.id, actor="test", now=utcnow())
    for email in ("on@example.com", "off@example.com", "none@example.com", "not-an-email"):
        await password_reset.mail_reset_link(database, LINKS, email, client_address=None)
    async with database.db_session() as db:
        recipients = list(await db.scalars(select(MailMessage.recipient)))
        requested = list(
            await db.scalars(
                select(AuditEvent.event).where(AuditEvent.event == "password_reset_requested")
            )
        )
    assert recipients == ["on@example.com"]
    assert len(requested) == 1


async def test_forgot_is_throttled_per_address_asked_for_however_spelled(
    database: Database,
) -> None:
    async def ask(email: str, address: str) -> None:
        async with database.db_session() as db:
            await password_reset.forgot_password(db, LINKS, email, client_address=address)

    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        await ask("Ada@Example.com ", address)
    with pytest.raises(ThrottledError):
        await ask("ada@example.com", "192.0.2.4")


async def test_a_token_resets_once_even_when_raced(database: Database) -> None:
    async with database.db_session() as db:
        await _register(db, "race@example.com")
        account = await administration.find_account(db, "race@example.com")
        token = email_tokens.issue(
            db, account.id, Purpose.RESET_PASSWORD, LINKS.token_ttl, utcnow()
        )
        await db.commit()

    async def reset() -> bool:
        async with database.db_session() as db:
            try:
                await password_reset.reset_password(
                    db, RULES, token, OTHER_STRONG_PASSWORD, client_address=None
                )
            except InvalidEmailTokenError:
                return False
            return True

    assert sorted(await asyncio.gather(reset(), reset(), reset())) == [False, False, True]


async def test_a_refused_password_keeps_the_token_usable(db: AsyncSession) -> None:
    await _register(db, "weak@example.com")
    account = await administration.find_account(db, "weak@example.com")
    token = email_tokens.issue(db, account.id, Purpose.RESET_PASSWORD, LINKS.token_ttl, utcnow())
    await db.commit()
    with pytest.raises(PasswordPolicyError):
        await password_reset.reset_password(db, RULES, token, "password1", client_address=None)
    assert (
        await password_reset.reset_password(
            db, RULES, token, OTHER_STRONG_PASSWORD, client_address=None
        )
        == 0
    )


async def test_a_reset_spends_every_other_reset_token_of_the_account(db: AsyncSession) -> None:
    await _register(db, "two@example.com")
    account = await administration.find_account(db, "two@example.com")
    first, second = (
        email_tokens.issue(db, account.id, Purpose.RESET_PASSWORD, LINKS.token_ttl, utcnow())
        for _ in range(2)
    )
    await db.commit()
    await password_reset.reset_password(
        db, RULES, first, OTHER_STRONG_PASSWORD, client_address=None
    )
    with pytest.raises(InvalidEmailTokenError):
        await password_reset.reset_password(db, RULES, second, STRONG_PASSWORD, client_address=None)
