"""Consuming auth's events: each applied once however often delivered; a deletion removes
the profile; deny entries last one token lifetime and every replica loads them."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_client import Principal
from service_kit.db import Database
from users_service import events, revocations
from users_service.models import DenyEntry, ProcessedEvent, Profile

pytestmark = pytest.mark.anyio

LIFETIME = 910.0


def event(
    kind: str, account: uuid.UUID, session: uuid.UUID | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "sequence": 1,
        "type": kind,
        "account_id": str(account),
        "session_id": str(session) if session else None,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {},
        **extra,
    }


def principal(account: uuid.UUID, session: uuid.UUID | None = None) -> Principal:
    now = int(datetime.now(UTC).timestamp())
    return Principal(
        subject=str(account),
        client_id="public",
        scopes=frozenset(),
        roles=frozenset(),
        session_id=str(session or uuid.uuid4()),
        expires_at=now + 300,
        issued_at=now,
        token_id="t",
        key_id="k",
    )


async def consume(db: AsyncSession, *batch: dict[str, Any]) -> list[Any]:
    return await events.consume(
        db, list(batch), max_token_lifetime_seconds=LIFETIME, now=datetime.now(UTC)
    )


async def _count(db: AsyncSession, model: type[Any]) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def test_an_event_delivered_twice_is_applied_once(db: AsyncSession) -> None:
    account = uuid.uuid4()
    disabled = event("account.disabled", account)
    enabled = event("account.enabled", account)
    assert len(await consume(db, disabled)) == 1
    assert await _count(db, DenyEntry) == 1
    assert len(await consume(db, enabled)) == 1
    assert await _count(db, DenyEntry) == 0
    # The publisher sends the disable again (its 2xx was lost): nothing happens.
    assert await consume(db, disabled, enabled) == []
    assert await _count(db, DenyEntry) == 0
    assert await _count(db, ProcessedEvent) == 2


async def test_a_deletion_removes_the_profile_and_denies_the_account(
    database: Database, db: AsyncSession
) -> None:
    account, other = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    db.add_all([Profile(id=account, created_at=now, updated_at=now), Profile(id=other)])
    await db.commit()
    created = event("account.created", account)
    deleted = event("account.deleted", account)
    applied = await consume(db, created, deleted)
    assert [(r.kind, r.key) for r in applied] == [("subject", str(account))]
    assert list(await db.scalars(select(Profile.id))) == [other]
    deny_list = await revocations.load(database, 1000, datetime.now(UTC))
    assert deny_list.is_denied(principal(account))
    assert not deny_list.is_denied(principal(other))


async def test_a_revoked_session_is_denied_and_not_the_accounts_other_sessions(
    database: Database, db: AsyncSession
) -> None:
    account, session = uuid.uuid4(), uuid.uuid4()
    await consume(db, event("session.revoked", account, session))
    deny_list = await revocations.load(database, 1000, datetime.now(UTC))
    assert deny_list.is_denied(principal(account, session))
    assert not deny_list.is_denied(principal(account))


async def test_a_deny_entry_lasts_one_token_lifetime_from_the_event(
    database: Database, db: AsyncSession
) -> None:
    account = uuid.uuid4()
    occurred = datetime.now(UTC) - timedelta(seconds=100)
    await consume(db, event("account.disabled", account, occurred_at=occurred.isoformat()))
    expires_at = await db.scalar(select(DenyEntry.expires_at))
    assert expires_at == occurred + timedelta(seconds=LIFETIME)
    # Before then it is loaded; after it, every token it matched has expired: not loaded, purged.
    just_before = occurred + timedelta(seconds=LIFETIME - 1)
    assert len(await revocations.load(database, 1000, just_before)) == 1
    after = occurred + timedelta(seconds=LIFETIME)
    assert len(await revocations.load(database, 1000, after)) == 0
    await revocations.purge_expired(database, after)
    assert await _count(db, DenyEntry) == 0


async def test_a_later_event_extends_a_deny_entry_never_shortens_it(db: AsyncSession) -> None:
    session = uuid.uuid4()
    late = datetime.now(UTC)
    early = late - timedelta(seconds=60)
    await consume(db, event("session.revoked", uuid.uuid4(), session, occurred_at=late.isoformat()))
    await consume(
        db, event("session.revoked", uuid.uuid4(), session, occurred_at=early.isoformat())
    )
    assert await db.scalar(select(DenyEntry.expires_at)) == late + timedelta(seconds=LIFETIME)


async def test_a_malformed_event_changes_nothing(db: AsyncSession) -> None:
    broken = event("session.revoked", uuid.uuid4())  # no session id
    with pytest.raises(ValueError, match="session_id"):
        await consume(db, event("account.disabled", uuid.uuid4()), broken)
    await db.rollback()
    assert await _count(db, ProcessedEvent) == 0
