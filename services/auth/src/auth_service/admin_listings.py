"""What administrators read: pages of accounts and of audit events, each in a stable order
with an opaque cursor to the next page (the position of the page's last row)."""

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import Account, AuditEvent

Row = TypeVar("Row", Account, AuditEvent)


class InvalidCursorError(ValueError):
    """A cursor this listing did not hand out."""


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor: the position (time, id) of the last row of a page."""
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position `encode_cursor` wrote; `InvalidCursorError` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, id_text = raw.split("|")
        at, row_id = datetime.fromisoformat(at_text), uuid.UUID(id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursorError("not a cursor of this listing") from exc
    if at.tzinfo is None:
        raise InvalidCursorError("not a cursor of this listing")
    return at, row_id


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _page(
    db: AsyncSession, query: Select[Row], limit: int, position: Any
) -> tuple[list[Row], str | None]:
    rows: Sequence[Row] = (await db.scalars(query.limit(limit + 1))).all()
    if len(rows) <= limit:
        return list(rows), None
    return list(rows[:limit]), encode_cursor(*position(rows[limit - 1]))


async def accounts_page(
    db: AsyncSession, *, query: str | None, limit: int, cursor: str | None
) -> tuple[list[Account], str | None]:
    """Accounts, oldest first, whose email or username starts with `query` (compared
    case-insensitively); and the cursor to the next page (None on the last)."""
    statement = select(Account).order_by(Account.created_at, Account.id)
    if query:
        prefix = _escape_like(query.strip().casefold()) + "%"
        statement = statement.where(
            or_(
                Account.email_key.like(prefix, escape="\\"),
                Account.username_key.like(prefix, escape="\\"),
            )
        )
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        statement = statement.where(
            or_(Account.created_at > at, and_(Account.created_at == at, Account.id > last_id))
        )
    return await _page(db, statement, limit, lambda row: (row.created_at, row.id))


async def audit_page(
    db: AsyncSession,
    *,
    account_id: uuid.UUID | None,
    event: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEvent], str | None]:
    """Audit events, newest first, of one account and of one type when they are given; and
    the cursor to the next page (None on the last)."""
    statement = select(AuditEvent).order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    if account_id is not None:
        statement = statement.where(AuditEvent.account_id == account_id)
    if event is not None:
        statement = statement.where(AuditEvent.event == event)
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                AuditEvent.occurred_at < at,
                and_(AuditEvent.occurred_at == at, AuditEvent.id < last_id),
            )
        )
    return await _page(db, statement, limit, lambda row: (row.occurred_at, row.id))
