"""The mail outbox's delivery: a message is sent once whatever the number of workers,
retried with backoff, given up after the last attempt, and still sent after a restart."""

import asyncio
import uuid
from datetime import timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from auth_service import mail_delivery
from auth_service.clock import utcnow
from auth_service.mail import Composed, MailSealer, Outbox
from auth_service.mail_delivery import DeliveryPolicy, build_message, retry_delay
from auth_service.models import MailMessage
from service_kit.db import Database
from testsupport.auth_service import Mailbox

pytestmark = pytest.mark.anyio

SEALER = MailSealer("a key-encryption key of the tests, long enough to be one")
OUTBOX = Outbox(SEALER, "https://app.example")
POLICY = DeliveryPolicy(
    sender_address="Auth <no-reply@example.com>",
    max_attempts=3,
    retry_base=timedelta(seconds=5),
    claim_for=timedelta(seconds=60),
)
COMPOSED = Composed("Hello", "plain text", "<p>html</p>")


async def _enqueue(database: Database, recipient: str = "ada@example.com") -> uuid.UUID:
    async with database.db_session() as db:
        message_id = OUTBOX.enqueue(db, recipient, COMPOSED, now=utcnow())
        await db.commit()
    return message_id


async def _row(database: Database, message_id: uuid.UUID) -> MailMessage:
    async with database.db_session() as db:
        row = await db.get(MailMessage, message_id)
        assert row is not None
        return row


async def _due_now(database: Database, message_id: uuid.UUID) -> None:
    async with database.db_session() as db:
        await db.execute(
            update(MailMessage)
            .where(MailMessage.id == message_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()


async def test_a_message_is_sent_and_its_content_erased(database: Database) -> None:
    mailbox = Mailbox()
    message_id = await _enqueue(database)
    assert await mail_delivery.deliver_due(database, SEALER, mailbox, POLICY) == 1
    [message] = mailbox.messages
    assert message["Message-ID"] == f"<{message_id}@example.com>"
    assert message["To"] == "ada@example.com"
    row = await _row(database, message_id)
    assert row.sent_at is not None
    assert (row.sealed, row.next_attempt_at, row.attempts) == (None, None, 1)
    assert await mail_delivery.deliver_due(database, SEALER, mailbox, POLICY) == 0


async def test_concurrent_workers_send_each_message_once(database: Database) -> None:
    mailbox = Mailbox()
    ids = [await _enqueue(database, f"u{index}@example.com") for index in range(6)]
    workers = [mail_delivery.deliver_due(database, SEALER, mailbox, POLICY) for _ in range(4)]
    sent = await asyncio.gather(*workers)
    assert sum(sent) == 6
    assert sorted(message["Message-ID"] for message in mailbox.messages) == sorted(
        f"<{message_id}@example.com>" for message_id in ids
    )


async def test_a_claimed_message_is_not_sent_by_another_worker(database: Database) -> None:
    message_id = await _enqueue(database)
    mailbox = Mailbox()
    async with database.db_session() as db:
        await db.execute(
            update(MailMessage)
            .where(MailMessage.id == message_id)
            .values(claimed_until=utcnow() + timedelta(seconds=30))
        )
        await db.commit()
    assert await mail_delivery.deliver_one(database, SEALER, mailbox, POLICY, message_id) is False
    assert mailbox.messages == []


async def test_a_failure_is_retried_with_backoff_then_given_up(database: Database) -> None:
    mailbox = Mailbox(failures=3)
    message_id = await _enqueue(database)
    before = utcnow()
    await mail_delivery.deliver_due(database, SEALER, mailbox, POLICY)
    row = await _row(database, message_id)
    assert row.attempts == 1
    assert row.last_error == "ConnectionRefusedError"
    assert row.next_attempt_at is not None
    assert row.next_attempt_at - before >= timedelta(seconds=5)
    assert row.claimed_until is None
    # Not due yet: nothing happens.
    assert await mail_delivery.deliver_due(database, SEALER, mailbox, POLICY) == 0
    assert (await _row(database, message_id)).attempts == 1
    for _ in range(2):
        await _due_now(database, message_id)
        await mail_delivery.deliver_due(database, SEALER, mailbox, POLICY)
    row = await _row(database, message_id)
    assert row.attempts == 3
    assert row.failed_at is not None
    assert (row.sealed, row.next_attempt_at) == (None, None)


def test_the_backoff_doubles_up_to_an_hour() -> None:
    assert [retry_delay(POLICY, n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert retry_delay(POLICY, 50) == timedelta(hours=1)


async def test_a_claim_left_by_a_dead_worker_lapses_and_the_message_is_sent(
    database: Database,
) -> None:
    message_id = await _enqueue(database)
    # A worker claimed it, then died before sending: the claim has run out since.
    async with database.db_session() as db:
        await db.execute(
            update(MailMessage)
            .where(MailMessage.id == message_id)
            .values(claimed_until=utcnow() - timedelta(seconds=1), attempts=1)
        )
        await db.commit()
    mailbox = Mailbox()
    assert await mail_delivery.deliver_due(database, SEALER, mailbox, POLICY) == 1
    assert (await _row(database, message_id)).attempts == 2


async def test_content_sealed_under_another_key_is_given_up(database: Database) -> None:
    message_id = await _enqueue(database)
    other = MailSealer("another key-encryption key, long enough to be one too")
    assert await mail_delivery.deliver_due(database, other, Mailbox(), POLICY) == 0
    row = await _row(database, message_id)
    assert (row.failed_at is not None, row.last_error, row.sealed) == (True, "unreadable", None)


async def test_the_service_sends_what_was_left_in_the_outbox_at_start(database_url: str) -> None:
    """A message committed before a restart (or by a replica that died) goes out."""
    from testsupport.auth_service import running_app, settings_for

    database = Database(database_url)
    settings = settings_for(database_url)
    outbox = Outbox(MailSealer(settings.key_encryption_key.get_secret_value()), "https://x")
    async with database.db_session() as db:
        outbox.enqueue(db, "left@example.com", COMPOSED, now=utcnow())
        await db.commit()
    mailbox = Mailbox()
    async with running_app(settings, mailbox=mailbox):
        message = await mailbox.next_to("left@example.com")
        assert message["Subject"] == "Hello"
        async with asyncio.timeout(5):
            while True:  # marked sent just after the server accepted it
                async with database.db_session() as db:
                    pending = await db.scalar(
                        select(MailMessage.id).where(MailMessage.sent_at.is_(None))
                    )
                if pending is None:
                    break
                await asyncio.sleep(0.02)
    await database.dispose()


def test_a_message_has_a_text_and_an_html_alternative() -> None:
    message: EmailMessage = build_message(
        uuid.uuid4(), "Auth <no-reply@example.com>", "ada@example.com", COMPOSED
    )
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)) is not None
    assert message.get_body(("html",)) is not None
