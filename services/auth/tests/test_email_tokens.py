"""Mailed tokens: random, stored as hashes only, single use, short-lived, one purpose."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import email_tokens
from auth_service.accounts import PasswordRules, register
from auth_service.clock import utcnow
from auth_service.email_tokens import Purpose
from auth_service.models import EmailToken
from auth_service.passwords import PasswordHasher
from auth_service.sign_in_sessions import hash_token
from service_kit.db import Database
from testsupport.auth_service import STRONG_PASSWORD

pytestmark = pytest.mark.anyio

TTL = timedelta(minutes=30)


async def _account_id(db: AsyncSession) -> uuid.UUID:
    account = await register(
        db,
        PasswordRules(PasswordHasher(4, 1), 0),
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        password=STRONG_PASSWORD,
        username=None,
        now=utcnow(),
    )
    return account.id


async def test_only_the_hash_is_stored(db: AsyncSession) -> None:
    account_id = await _account_id(db)
    token = email_tokens.issue(db, account_id, Purpose.RESET_PASSWORD, TTL, utcnow())
    await db.commit()
    stored = (await db.scalars(select(EmailToken))).one()
    assert stored.token_hash == hash_token(token)
    assert token.encode() not in stored.token_hash
    assert len(token) >= 43


async def test_a_token_is_spent_once_for_its_purpose_only(db: AsyncSession) -> None:
    account_id = await _account_id(db)
    now = utcnow()
    token = email_tokens.issue(db, account_id, Purpose.VERIFY_EMAIL, TTL, now)
    await db.commit()
    assert await email_tokens.spend(db, token, Purpose.RESET_PASSWORD, now) is None
    assert await email_tokens.holder(db, token, Purpose.VERIFY_EMAIL, now) == account_id
    assert await email_tokens.spend(db, token, Purpose.VERIFY_EMAIL, now) == account_id
    assert await email_tokens.spend(db, token, Purpose.VERIFY_EMAIL, now) is None
    assert await email_tokens.holder(db, token, Purpose.VERIFY_EMAIL, now) is None


async def test_a_token_lapses_after_its_lifetime(db: AsyncSession) -> None:
    account_id = await _account_id(db)
    now = utcnow()
    token = email_tokens.issue(db, account_id, Purpose.RESET_PASSWORD, TTL, now)
    await db.commit()
    assert await email_tokens.spend(db, token, Purpose.RESET_PASSWORD, now + TTL) is None
    assert await email_tokens.spend(db, token, Purpose.RESET_PASSWORD, now + TTL / 2) is not None


@pytest.mark.parametrize("token", ["", "short", "x" * 43 + "!", "ä" * 43])
async def test_malformed_tokens_are_refused_without_a_query(db: AsyncSession, token: str) -> None:
    assert await email_tokens.spend(db, token, Purpose.RESET_PASSWORD, utcnow()) is None


async def test_concurrent_spends_succeed_once(database: Database) -> None:
    async with database.db_session() as db:
        account_id = await _account_id(db)
        token = email_tokens.issue(db, account_id, Purpose.RESET_PASSWORD, TTL, utcnow())
        await db.commit()

    async def spend() -> uuid.UUID | None:
        async with database.db_session() as db:
            spent = await email_tokens.spend(db, token, Purpose.RESET_PASSWORD, utcnow())
            await db.commit()
            return spent

    results = await asyncio.gather(*(spend() for _ in range(5)))
    assert results.count(account_id) == 1
    assert results.count(None) == 4


async def test_spend_all_ends_every_outstanding_token_of_the_purpose(db: AsyncSession) -> None:
    account_id = await _account_id(db)
    now = utcnow()
    resets = [email_tokens.issue(db, account_id, Purpose.RESET_PASSWORD, TTL, now) for _ in "ab"]
    verify = email_tokens.issue(db, account_id, Purpose.VERIFY_EMAIL, TTL, now)
    await db.commit()
    await email_tokens.spend_all(db, account_id, Purpose.RESET_PASSWORD, now)
    assert [await email_tokens.holder(db, t, Purpose.RESET_PASSWORD, now) for t in resets] == [
        None,
        None,
    ]
    assert await email_tokens.holder(db, verify, Purpose.VERIFY_EMAIL, now) == account_id
