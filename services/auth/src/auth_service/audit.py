"""The audit trail of security events, written in the same transaction as the event."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import AuditEvent


class Event(StrEnum):
    REGISTERED = "registered"
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"  # noqa: S105 - an event name
    SESSION_REVOKED = "session_revoked"
    LOGGED_OUT_EVERYWHERE = "logged_out_everywhere"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    PASSWORD_REHASHED = "password_rehashed"  # noqa: S105 - an event name
    PASSWORD_RESET_REQUESTED = "password_reset_requested"  # noqa: S105 - an event name
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name
    EMAIL_VERIFICATION_REQUESTED = "email_verification_requested"
    EMAIL_VERIFIED = "email_verified"
    ROLE_GRANTED = "role_granted"
    ROLE_REVOKED = "role_revoked"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_ENABLED = "account_enabled"
    ACCOUNT_DELETED = "account_deleted"
    KEY_ROTATED = "key_rotated"
    KEY_RETIRED = "key_retired"
    KEY_REVOKED = "key_revoked"
    DATA_PURGED = "data_purged"
    CLIENT_CREATED = "client_created"
    CLIENT_UPDATED = "client_updated"
    CLIENT_SECRET_ROTATED = "client_secret_rotated"  # noqa: S105 - an event name
    CLIENT_DELETED = "client_deleted"
    CLIENT_AUTHENTICATION_FAILED = "client_authentication_failed"
    AUTHORIZATION_CODE_REPLAYED = "authorization_code_replayed"
    SIGNED_OUT = "signed_out"


def record(
    db: AsyncSession,
    event: Event,
    *,
    now: datetime,
    account_id: uuid.UUID | None = None,
    client_address: str | None = None,
    client_id: str | None = None,
    **details: Any,
) -> None:
    """Add an event to `db`'s unit of work: it is written when the operation commits.

    `details` must never hold a password, a token or anything derived from one.
    """
    db.add(
        AuditEvent(
            occurred_at=now,
            event=event.value,
            account_id=account_id,
            client_address=client_address,
            client_id=client_id,
            details=details,
        )
    )


# What an erased account's events keep of their details: identifiers, nothing personal.
_ERASURE_KEEPS = frozenset({"actor", "session_id"})


async def erase_personal_data(db: AsyncSession, account_id: uuid.UUID) -> None:
    """Reduce an erased account's events to ids and event types: the client address goes,
    and every detail but the ids in `_ERASURE_KEEPS` (in `db`'s transaction)."""
    await db.execute(
        update(AuditEvent)
        .where(AuditEvent.account_id == account_id)
        .values(client_address=None)
        .execution_options(synchronize_session=False)
    )
    rows = await db.execute(
        select(AuditEvent.id, AuditEvent.details).where(AuditEvent.account_id == account_id)
    )
    for event_id, details in rows.all():
        kept = {key: value for key, value in (details or {}).items() if key in _ERASURE_KEEPS}
        if kept != details:
            await db.execute(
                update(AuditEvent)
                .where(AuditEvent.id == event_id)
                .values(details=kept)
                .execution_options(synchronize_session=False)
            )
