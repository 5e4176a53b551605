"""The outbox: events are written in the transaction of the change that causes them, one
per revoked session, and a reader never skips one that commits late."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, credentials, events, sign_in_sessions
from auth_service.accounts import PasswordRules, register
from auth_service.clock import utcnow
from auth_service.events import EventType
from auth_service.models import Account, OutboxEvent
from auth_service.passwords import PasswordHasher
from auth_service.sign_in_sessions import RevokedReason, SessionPolicy
from service_kit.db import Database
from testsupport.auth_service import STRONG_PASSWORD

pytestmark = pytest.mark.anyio

POLICY = SessionPolicy(idle_ttl=timedelta(days=1), absolute_ttl=timedelta(days=7))


async def _account(db: AsyncSession) -> Account:
    now = utcnow()
    account = Account(
        id=uuid.uuid4(),
        email="e@example.com",
        email_key=f"{uuid.uuid4().hex}@example.com",
        password_hash="$2b$04$" + "x" * 53,
        roles=[],
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    db.add(account)
    await db.commit()
    return account


async def _events(database: Database) -> list[tuple[str, uuid.UUID | None]]:
    async with database.db_session() as db:
        rows = await db.execute(
            select(OutboxEvent.type, OutboxEvent.session_id).order_by(OutboxEvent.sequence)
        )
        return [(kind, session) for kind, session in rows]


async def test_an_event_commits_and_rolls_back_with_its_transaction(database: Database) -> None:
    account_id = uuid.uuid4()
    async with database.db_session() as db:
        await events.publish(db, EventType.ACCOUNT_ENABLED, account_id=account_id, now=utcnow())
        await db.rollback()
    assert await _events(database) == []
    async with database.db_session() as db:
        await events.publish(db, EventType.ACCOUNT_ENABLED, account_id=account_id, now=utcnow())
        await events.publish(db, EventType.ACCOUNT_DISABLED, account_id=account_id, now=utcnow())
        await db.commit()
    assert await _events(database) == [("account.enabled", None), ("account.disabled", None)]


async def test_disabling_publishes_each_revoked_session_then_the_account(
    database: Database, db: AsyncSession
) -> None:
    account = await _account(db)
    sessions = [
        (
            await sign_in_sessions.start_session(
                db, account, client_id="public", scope="profile", policy=POLICY, now=utcnow()
            )
        ).session_id
        for _ in range(2)
    ]
    await db.commit()
    await administration.disable(db, account.id, actor="cli", now=utcnow())
    # Again: nothing left to revoke, the account already disabled, nothing published.
    await administration.disable(db, account.id, actor="cli", now=utcnow())
    published = await _events(database)
    assert published == [
        *(("session.revoked", session) for session in sorted(sessions)),
        ("account.disabled", None),
    ]
    await administration.enable(db, account.id, actor="cli", now=utcnow())
    assert (await _events(database))[-1] == ("account.enabled", None)


async def test_a_session_revoked_twice_is_published_once(
    database: Database, db: AsyncSession
) -> None:
    account = await _account(db)
    issued = await sign_in_sessions.start_session(
        db, account, client_id="public", scope="profile", policy=POLICY, now=utcnow()
    )
    for _ in range(2):
        await sign_in_sessions.revoke_session(
            db, issued.session_id, RevokedReason.REVOKED, utcnow()
        )
    await db.commit()
    assert await _events(database) == [("session.revoked", issued.session_id)]


async def test_signing_out_everywhere_publishes_every_session_and_nothing_on_rollback(
    database: Database, db: AsyncSession
) -> None:
    account = await _account(db)
    account_id = account.id
    issued = await sign_in_sessions.start_session(
        db, account, client_id="public", scope="profile", policy=POLICY, now=utcnow()
    )
    await db.commit()
    await sign_in_sessions.revoke_account_sessions(
        db, account_id, RevokedReason.LOGOUT_ALL, utcnow()
    )
    await db.rollback()  # the operation failed: no revocation, no event
    assert await _events(database) == []
    assert await credentials.sign_out_everywhere(db, account_id, client_address=None) == 1
    assert await _events(database) == [("session.revoked", issued.session_id)]


async def test_the_reader_waits_for_an_event_that_commits_late(
    database: Database, backend: str
) -> None:
    """A writer that drew a sequence number and has not committed holds the reader back:
    otherwise the reader could pass a later, committed event, and skip this one for good."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: commit order is sequence order")
    async with database.db_session() as slow:
        await events.publish(slow, EventType.ACCOUNT_CREATED, account_id=uuid.uuid4(), now=utcnow())

        async def read() -> int:
            async with database.engine.connect() as connection:
                return await events.visible_until(connection)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.2)  # within the reader's lock timeout (0.5 s)
        assert not reader.done()
        await slow.commit()
    assert await reader == 1


async def test_registration_and_deletion_publish_the_accounts_first_and_last_events(
    database: Database, db: AsyncSession
) -> None:
    account = await register(
        db,
        PasswordRules(PasswordHasher(4, 1), 0),
        email="ev@example.com",
        password=STRONG_PASSWORD,
        username=None,
        now=utcnow(),
    )
    account_id = account.id
    issued = await sign_in_sessions.start_session(
        db, account, client_id="public", scope="profile", policy=POLICY, now=utcnow()
    )
    await db.commit()
    await administration.delete_account(db, account_id, actor="cli", now=utcnow())
    assert await _events(database) == [
        ("account.created", None),
        ("session.revoked", issued.session_id),
        ("account.deleted", None),
    ]
    async with database.db_session() as check:
        owners = set(await check.scalars(select(OutboxEvent.account_id)))
    assert owners == {account_id}
