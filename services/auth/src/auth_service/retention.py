"""Retention: what the service no longer needs is deleted, by `auth-service purge` and by a
periodic task in every replica.

- throttle rows the throttle has forgotten (a window without failure or wait);
- refresh tokens expired for longer than the session retention (a spent token is kept
  until then: presenting it again is how reuse is detected);
- sessions ended (revoked or expired) for longer than the session retention;
- audit events older than the audit retention;
- client secrets past their rotation grace, and the `jti`s of client assertions once the
  assertions have expired (they are refused by their `exp` from then on);
- mailed tokens once expired (spent or not), and outbox messages sent or given up on for
  longer than the session retention.

Safe with several replicas: deletes go in batches, each its own transaction, and on
PostgreSQL each batch first takes a transaction-scoped advisory lock, so one replica purges
at a time and the others skip the round; on SQLite the single writer serialises them.
"""

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.clock import utcnow
from auth_service.models import (
    AuditEvent,
    AuthorizationCode,
    ClientSecret,
    EmailToken,
    LoginThrottle,
    MailMessage,
    RefreshToken,
    SignInSession,
    UsedClientAssertion,
)
from service_kit.db import Database

BATCH_ROWS = 5000
# pg_try_advisory_xact_lock's key: any constant the service uses for nothing else.
_ADVISORY_LOCK = 0x617574685F707267  # "auth_prg"

log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept (the *_RETENTION_SECONDS settings)."""

    throttle_window: timedelta
    sessions: timedelta
    audit: timedelta


@dataclass
class Purged:
    """Rows deleted, by kind; `skipped` when another replica was purging."""

    throttles: int = 0
    refresh_tokens: int = 0
    sessions: int = 0
    audit_events: int = 0
    client_secrets: int = 0
    client_assertions: int = 0
    authorization_codes: int = 0
    email_tokens: int = 0
    mail_messages: int = 0
    skipped: bool = field(default=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _purges(policy: RetentionPolicy, now: datetime) -> list[tuple[str, tuple[Any, ...], Any]]:
    """(name, primary-key columns, condition) of each kind of row to delete, in order."""
    throttle_cutoff = now - policy.throttle_window
    session_cutoff = now - policy.sessions
    return [
        (
            "throttles",
            (LoginThrottle.key,),
            # A wait always ends after the last failure: the first test uses the index.
            (LoginThrottle.last_failure_at < throttle_cutoff)
            & or_(
                LoginThrottle.blocked_until.is_(None),
                LoginThrottle.blocked_until < throttle_cutoff,
            ),
        ),
        ("refresh_tokens", (RefreshToken.id,), RefreshToken.expires_at < session_cutoff),
        # Kept as long as ended sessions, so that a late replay still finds what to revoke.
        (
            "authorization_codes",
            (AuthorizationCode.code_hash,),
            AuthorizationCode.expires_at < session_cutoff,
        ),
        (
            "sessions",
            (SignInSession.id,),
            or_(
                SignInSession.expires_at < session_cutoff,
                SignInSession.revoked_at < session_cutoff,
            ),
        ),
        ("audit_events", (AuditEvent.id,), AuditEvent.occurred_at < now - policy.audit),
        ("client_secrets", (ClientSecret.id,), ClientSecret.expires_at < now),
        (
            "client_assertions",
            (UsedClientAssertion.client_id, UsedClientAssertion.jti),
            UsedClientAssertion.expires_at < now,
        ),
        ("email_tokens", (EmailToken.token_hash,), EmailToken.expires_at < now),
        (
            "mail_messages",
            (MailMessage.id,),
            (MailMessage.created_at < session_cutoff) & MailMessage.next_attempt_at.is_(None),
        ),
    ]


async def _claim(db: AsyncSession) -> bool:
    """This transaction may purge: always on SQLite; on PostgreSQL unless another holds
    the lock."""
    if db.get_bind().dialect.name != "postgresql":
        return True
    claimed = await db.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK}
    )
    return bool(claimed)


async def purge(
    database: Database,
    policy: RetentionPolicy,
    now: datetime,
    *,
    batch_rows: int = BATCH_ROWS,
) -> Purged:
    """Delete every row past its retention at `now`, batch by batch.

    An operation of its own, and the only one that commits more than once: each batch is a
    unit of work, so that a long purge never holds locks that requests wait for.
    """
    purged = Purged()
    for name, key, condition in _purges(policy, now):
        while True:
            async with database.db_session() as db:
                if not await _claim(db):
                    purged.skipped = True
                    return purged
                # SKIP LOCKED: never wait on a row a request holds (a reservation re-counting
                # a forgotten throttle row), so the purge can never be half of a deadlock.
                batch = (
                    select(*key)
                    .where(condition)
                    .limit(batch_rows)
                    .with_for_update(skip_locked=True)
                )
                result = await db.execute(
                    delete(key[0].table)
                    .where((key[0] if len(key) == 1 else tuple_(*key)).in_(batch))
                    .execution_options(synchronize_session=False)
                )
                await db.commit()
            deleted = int(getattr(result, "rowcount", 0) or 0)
            setattr(purged, name, getattr(purged, name) + deleted)
            if deleted < batch_rows:
                break
    return purged


async def keep_purging(database: Database, policy: RetentionPolicy, interval: float) -> None:
    """Purge every `interval` seconds, for as long as the service runs."""
    while True:
        await asyncio.sleep(interval)
        try:
            purged = await purge(database, policy, utcnow())
        except Exception as exc:  # the database may be down: try again next round
            log.warning("purge_failed", error=type(exc).__name__)
            continue
        if purged.skipped or any(
            value for name, value in purged.as_dict().items() if name != "skipped"
        ):
            log.info("purged", **purged.as_dict())
