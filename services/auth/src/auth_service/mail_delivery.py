"""Mail delivery: the worker that sends the outbox's messages over SMTP, in every replica.

Each message is claimed before it is sent, by one compare-and-set (`UPDATE … WHERE id = :id
AND due AND unclaimed`): of any number of workers, one sends it. It is marked sent after the
SMTP server accepted it, and its content erased. A failure is retried with exponential
backoff (RETRY_BASE · 2^(attempt-1), at most an hour) until MAIL_MAX_ATTEMPTS, then given
up. A worker that dies holding a claim (a crash, a restart) leaves it to lapse, and the
message is sent after the restart; only a death between the server's acceptance and the mark
can send it twice, with the same Message-ID, by which mail servers and clients drop a copy.
"""

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Protocol

import structlog
from cryptography.exceptions import InvalidTag
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.clock import utcnow
from auth_service.mail import Composed, MailSealer
from auth_service.models import MailMessage
from service_kit.db import Database

BATCH = 20
MAX_RETRY_DELAY = timedelta(hours=1)

log = structlog.stdlib.get_logger(__name__)


class MailSender(Protocol):
    """Hands a message to a mail server; raises when it was not accepted."""

    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpSender:
    """SMTP (aiosmtplib), with STARTTLS required when `starttls`, and login when a username
    is set."""

    host: str
    port: int
    username: str
    password: str
    starttls: bool
    timeout: float

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib  # imported by the first message sent, not at start

        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username or None,
            password=self.password if self.username else None,
            start_tls=self.starttls,
            timeout=self.timeout,
        )


@dataclass(frozen=True)
class DeliveryPolicy:
    """Who sends, how often a message is tried, and how long a claim holds."""

    sender_address: str
    max_attempts: int
    retry_base: timedelta
    claim_for: timedelta


def retry_delay(policy: DeliveryPolicy, attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: doubling, at most an hour."""
    delay: timedelta = policy.retry_base * 2 ** min(attempts - 1, 20)
    return min(delay, MAX_RETRY_DELAY)


def build_message(
    message_id: uuid.UUID, sender_address: str, recipient: str, composed: Composed
) -> EmailMessage:
    """The message as SMTP carries it: plain text and HTML alternatives, its outbox id as its
    Message-ID."""
    message = EmailMessage()
    message["From"] = sender_address
    message["To"] = recipient
    message["Subject"] = composed.subject
    message["Date"] = formatdate(localtime=False)
    domain = Address(addr_spec=parseaddr(sender_address)[1]).domain or "localhost"
    message["Message-ID"] = f"<{message_id}@{domain}>"
    # 8bit, not quoted-printable: a link stays whole and greppable in the stored message.
    message.set_content(composed.text, cte="8bit")
    message.add_alternative(composed.html, subtype="html", cte="8bit")
    return message


async def _claim(
    db: AsyncSession, message_id: uuid.UUID, policy: DeliveryPolicy, now: datetime
) -> tuple[str, bytes | None, int] | None:
    """Claim a due message (the compare-and-set), committed; its recipient, sealed content
    and attempt number, or None when another worker has it or it is no longer due."""
    claimed = (
        await db.execute(
            update(MailMessage)
            .where(
                MailMessage.id == message_id,
                MailMessage.next_attempt_at <= now,
                or_(MailMessage.claimed_until.is_(None), MailMessage.claimed_until < now),
            )
            .values(claimed_until=now + policy.claim_for, attempts=MailMessage.attempts + 1)
            .returning(MailMessage.recipient, MailMessage.sealed, MailMessage.attempts)
            .execution_options(synchronize_session=False)
        )
    ).first()
    await db.commit()
    return None if claimed is None else (claimed[0], claimed[1], claimed[2])


async def _finish(
    db: AsyncSession, message_id: uuid.UUID, now: datetime, *, sent: bool, error: str | None
) -> None:
    """Sent or given up: no longer due, content erased."""
    await db.execute(
        update(MailMessage)
        .where(MailMessage.id == message_id)
        .values(
            sent_at=now if sent else None,
            failed_at=None if sent else now,
            next_attempt_at=None,
            claimed_until=None,
            sealed=None,
            last_error=error,
        )
        .execution_options(synchronize_session=False)
    )
    await db.commit()


async def _retry_later(db: AsyncSession, message_id: uuid.UUID, due: datetime, error: str) -> None:
    await db.execute(
        update(MailMessage)
        .where(MailMessage.id == message_id)
        .values(next_attempt_at=due, claimed_until=None, last_error=error)
        .execution_options(synchronize_session=False)
    )
    await db.commit()


async def deliver_one(
    database: Database,
    sealer: MailSealer,
    sender: MailSender,
    policy: DeliveryPolicy,
    message_id: uuid.UUID,
) -> bool:
    """Claim, send and mark one message; whether this call sent it."""
    async with database.db_session() as db:
        claimed = await _claim(db, message_id, policy, utcnow())
    if claimed is None:
        return False
    recipient, sealed, attempts = claimed
    try:
        if sealed is None:
            raise InvalidTag
        composed = sealer.open(message_id, sealed)
    except InvalidTag:  # sealed under another KEY_ENCRYPTION_KEY: it can never be sent
        async with database.db_session() as db:
            await _finish(db, message_id, utcnow(), sent=False, error="unreadable")
        log.error("mail_unreadable", message_id=str(message_id))
        return False
    import aiosmtplib  # a message to send: the SMTP client's errors are expected

    try:
        await sender.send(build_message(message_id, policy.sender_address, recipient, composed))
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error = type(exc).__name__
        async with database.db_session() as db:
            if attempts >= policy.max_attempts:
                await _finish(db, message_id, utcnow(), sent=False, error=error)
                log.error(
                    "mail_given_up", message_id=str(message_id), attempts=attempts, error=error
                )
            else:
                due = utcnow() + retry_delay(policy, attempts)
                await _retry_later(db, message_id, due, error)
                log.warning(
                    "mail_failed", message_id=str(message_id), attempts=attempts, error=error
                )
        return False
    async with database.db_session() as db:
        await _finish(db, message_id, utcnow(), sent=True, error=None)
    log.info("mail_sent", message_id=str(message_id), attempts=attempts)
    return True


async def deliver_due(
    database: Database, sealer: MailSealer, sender: MailSender, policy: DeliveryPolicy
) -> int:
    """Send every message due now (a batch at a time); how many this worker sent."""
    sent = 0
    while True:
        now = utcnow()
        async with database.db_session() as db:
            due = list(
                await db.scalars(
                    select(MailMessage.id)
                    .where(
                        MailMessage.next_attempt_at <= now,
                        or_(MailMessage.claimed_until.is_(None), MailMessage.claimed_until < now),
                    )
                    .order_by(MailMessage.next_attempt_at)
                    .limit(BATCH)
                )
            )
        for message_id in due:
            sent += await deliver_one(database, sealer, sender, policy, message_id)
        if len(due) < BATCH:
            return sent


async def keep_delivering(
    database: Database,
    sealer: MailSealer,
    sender: MailSender,
    policy: DeliveryPolicy,
    interval: float,
    stop: asyncio.Event,
) -> None:
    """Deliver what is due every `interval` seconds until `stop` is set; a round under way
    then finishes (a message being sent is marked, not left claimed, and no query is
    abandoned in flight). The first round waits too: nothing is due before start-up is
    over, and on Lambda, whose loop runs only during invocations, less is left running."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            await deliver_due(database, sealer, sender, policy)
        except Exception as exc:  # the database may be down: try again next round
            log.warning("mail_delivery_failed", error=type(exc).__name__)
