"""The events auth publishes to other services (a transactional outbox).

`publish` writes an event in the caller's transaction and never commits: the event exists
exactly when the change that caused it does. The publisher (`event_publisher.py`) delivers
them afterwards, in `sequence` order, at least once, to every subscriber.

On PostgreSQL, sequence numbers are drawn at insert but become visible at commit, so a
later number can commit before an earlier one. A reader that advanced past the later one
would skip the earlier one for good. Each writing transaction therefore holds a shared
advisory lock from its first event to its commit; the publisher takes the same lock
exclusively, for a moment, before it reads how far it may deliver (`visible_until`): every
number up to what it then reads has committed or will never be. SQLite has one writer at a
time, so its commit order is its sequence order already.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from auth_service.models import OutboxEvent

# Any constant; the key of the lock between event writers and the publisher.
OUTBOX_LOCK_KEY = 0x6576_656E_7473  # "events"


class EventType(StrEnum):
    ACCOUNT_CREATED = "account.created"
    ACCOUNT_EMAIL_VERIFIED = "account.email_verified"
    ACCOUNT_DISABLED = "account.disabled"
    ACCOUNT_ENABLED = "account.enabled"
    ACCOUNT_DELETED = "account.deleted"
    SESSION_REVOKED = "session.revoked"


async def publish(
    db: AsyncSession,
    type: EventType,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    now: datetime,
) -> uuid.UUID:
    """Add an event to `db`'s transaction (the caller commits); its id.

    `data` must never hold a password, a token or anything derived from one.
    """
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(
            text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": OUTBOX_LOCK_KEY}
        )
    event_id = uuid.uuid4()
    await db.execute(
        insert(OutboxEvent).values(
            id=event_id,
            type=type.value,
            account_id=account_id,
            session_id=session_id,
            occurred_at=now,
            payload=data or {},
        )
    )
    return event_id


async def visible_until(connection: AsyncConnection) -> int:
    """The highest sequence number below which every event has committed (or never will):
    what a reader may deliver up to without skipping one. Run in a transaction of its own,
    which it ends."""
    if connection.dialect.name == "postgresql":
        # Waits for the writers in flight. Shorter than PostgreSQL's deadlock_timeout (1 s):
        # should a writer ever wait on another queued behind this lock, the reader gives up
        # (and tries again next round), never a request's transaction.
        await connection.execute(text("SET LOCAL lock_timeout = '500ms'"))
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": OUTBOX_LOCK_KEY}
        )
    highest = await connection.scalar(select(func.max(OutboxEvent.sequence)))
    await connection.commit()
    return int(highest or 0)


def as_message(event: OutboxEvent) -> dict[str, Any]:
    """An event as subscribers receive it (JSON)."""
    return {
        "id": str(event.id),
        "sequence": event.sequence,
        "type": event.type,
        "account_id": str(event.account_id),
        "session_id": str(event.session_id) if event.session_id else None,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.payload,
    }
