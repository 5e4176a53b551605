"""The auth service's events, applied to this service's database (`POST /users/events`).

`consume` is an operation: one batch, one transaction, committed. Each event is applied
once: its id goes into `processed_events` in the same transaction as its effect, so a
delivery repeated (the publisher delivers at least once) changes nothing. The effects:

- `account.deleted`: the profile goes, and the account's tokens are refused;
- `account.disabled`: the account's tokens are refused; `account.enabled` lifts that;
- `session.revoked`: the session's tokens are refused;
- anything else (`account.created`, …): recorded as processed, nothing more.

Refusals are `deny_entries` rows, each kept until every token it matches has expired; the
replicas load them into their verifiers (`revocations.py`). On PostgreSQL the transaction
also notifies them (LISTEN/NOTIFY), delivered at commit.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_client import Revocation, revocation_of
from auth_client.revocation_events import ACCOUNT_DELETED
from service_kit.db import dialect_insert
from users_service.models import DenyEntry, ProcessedEvent, Profile

# The channel every replica listens on; the payload is empty (each reloads the table).
DENY_LIST_CHANNEL = "users_deny_list"


async def consume(
    db: AsyncSession,
    batch: Sequence[dict[str, Any]],
    *,
    max_token_lifetime_seconds: float,
    now: datetime,
) -> list[Revocation]:
    """Apply the events not yet processed, in the batch's order, and commit; the deny-list
    changes they made (for this replica's own list, at once). `InvalidEventError` (a
    `ValueError`) for a malformed event, before anything is written."""
    try:
        return await _consume(
            db, batch, max_token_lifetime_seconds=max_token_lifetime_seconds, now=now
        )
    except IntegrityError:
        # The same events, delivered twice at once, and the other delivery won: again,
        # now that its ids are there to be skipped.
        await db.rollback()
        return await _consume(
            db, batch, max_token_lifetime_seconds=max_token_lifetime_seconds, now=now
        )


async def _consume(
    db: AsyncSession,
    batch: Sequence[dict[str, Any]],
    *,
    max_token_lifetime_seconds: float,
    now: datetime,
) -> list[Revocation]:
    ids = [uuid.UUID(str(event["id"])) for event in batch]
    meanings = [
        revocation_of(event, max_token_lifetime_seconds=max_token_lifetime_seconds)
        for event in batch
    ]
    seen = set(await db.scalars(select(ProcessedEvent.id).where(ProcessedEvent.id.in_(ids))))
    applied: list[Revocation] = []
    for event_id, event, revocation in zip(ids, batch, meanings, strict=True):
        if event_id in seen:
            continue
        seen.add(event_id)
        db.add(ProcessedEvent(id=event_id, processed_at=now))
        if event.get("type") == ACCOUNT_DELETED:
            await db.execute(delete(Profile).where(Profile.id == uuid.UUID(event["account_id"])))
        if revocation is not None:
            await _store(db, revocation)
            applied.append(revocation)
    if applied and db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": DENY_LIST_CHANNEL})
    await db.commit()
    return applied


async def _store(db: AsyncSession, revocation: Revocation) -> None:
    key = (DenyEntry.kind == revocation.kind) & (DenyEntry.key == revocation.key)
    if revocation.lifted:
        await db.execute(delete(DenyEntry).where(key))
        return
    until = datetime.fromtimestamp(revocation.until, UTC)
    insert = dialect_insert(db.get_bind().dialect.name)
    statement = insert(DenyEntry).values(kind=revocation.kind, key=revocation.key, expires_at=until)
    # A later event extends an entry, never shortens it.
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[DenyEntry.kind, DenyEntry.key],
            set_={"expires_at": statement.excluded.expires_at},
            where=DenyEntry.expires_at < statement.excluded.expires_at,
        )
    )
