"""Pages of accounts and audit events: a stable order, cursors, filters."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit
from auth_service.admin_listings import (
    InvalidCursorError,
    accounts_page,
    audit_page,
    decode_cursor,
    encode_cursor,
)
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.models import Account

pytestmark = pytest.mark.anyio


def _account(email: str, username: str | None, at_seconds: int) -> Account:
    at = utcnow().replace(microsecond=0) + timedelta(seconds=at_seconds)
    return Account(
        id=uuid.uuid4(),
        email=email,
        email_key=email.casefold(),
        username=username,
        username_key=username.casefold() if username else None,
        password_hash="x",
        roles=[],
        disabled=False,
        created_at=at,
        updated_at=at,
        password_changed_at=at,
    )


async def test_accounts_come_oldest_first_and_every_one_once(db: AsyncSession) -> None:
    # Several share a creation time: the id breaks the tie.
    db.add_all(_account(f"u{index}@example.com", None, index // 3) for index in range(7))
    await db.commit()
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = await accounts_page(db, query=None, limit=2, cursor=cursor)
        seen += [account.email for account in page]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"u{index}@example.com" for index in range(7))
    assert len(seen) == 7


async def test_a_query_matches_an_email_or_username_prefix_and_no_wildcard(
    db: AsyncSession,
) -> None:
    db.add_all(
        [
            _account("Ann@example.com", "zed", 0),
            _account("bob@example.com", "ANNA_B", 1),
            _account("a_n@example.com", None, 2),
            _account("carl@example.com", None, 3),
        ]
    )
    await db.commit()
    page, _ = await accounts_page(db, query=" an", limit=10, cursor=None)
    assert [account.email for account in page] == ["Ann@example.com", "bob@example.com"]
    page, _ = await accounts_page(db, query="a_", limit=10, cursor=None)
    assert [account.email for account in page] == ["a_n@example.com"]
    page, _ = await accounts_page(db, query="%", limit=10, cursor=None)
    assert page == []


async def test_audit_events_come_newest_first_filtered(db: AsyncSession) -> None:
    account_id = uuid.uuid4()
    start = utcnow()
    for index in range(5):
        audit.record(
            db, Event.LOGIN_FAILED, now=start + timedelta(seconds=index), account_id=account_id
        )
    audit.record(db, Event.LOGIN_SUCCEEDED, now=start, account_id=account_id)
    audit.record(db, Event.LOGIN_FAILED, now=start, account_id=uuid.uuid4())
    await db.commit()
    page, cursor = await audit_page(
        db, account_id=account_id, event="login_failed", limit=3, cursor=None
    )
    rest, last = await audit_page(
        db, account_id=account_id, event="login_failed", limit=3, cursor=cursor
    )
    times = [event.occurred_at for event in page + rest]
    assert times == sorted(times, reverse=True)
    assert len(times) == 5
    assert last is None
    everything, _ = await audit_page(db, account_id=None, event=None, limit=100, cursor=None)
    assert len(everything) == 7


@pytest.mark.parametrize(
    "cursor", ["", "nope", "bm90fGE", encode_cursor(utcnow(), uuid.uuid4())[:-4]]
)
def test_a_cursor_not_handed_out_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor)


def test_a_cursor_round_trips() -> None:
    at, row_id = utcnow(), uuid.uuid4()
    assert decode_cursor(encode_cursor(at, row_id)) == (at, row_id)
