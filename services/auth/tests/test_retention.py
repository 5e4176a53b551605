"""Retention: what is past its retention is purged, what is still needed is kept; by the
command, by the service's periodic task, and by several replicas at once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from auth_service import retention
from auth_service.models import (
    Account,
    AuditEvent,
    Client,
    ClientSecret,
    EmailToken,
    LoginThrottle,
    MailMessage,
    RefreshToken,
    SignInSession,
    UsedClientAssertion,
)
from auth_service.retention import Purged, RetentionPolicy
from service_kit.db import Database
from testsupport.auth_service import running_app, settings_for

pytestmark = pytest.mark.anyio

NOW = datetime(2030, 6, 1, tzinfo=UTC)
POLICY = RetentionPolicy(
    throttle_window=timedelta(minutes=15), sessions=timedelta(days=7), audit=timedelta(days=365)
)


def _ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


async def _seed(database: Database) -> None:
    """Rows on both sides of every retention; `old-…` ones are due, `keep-…` ones are not."""
    async with database.db_session() as db:
        account_id = uuid.uuid4()
        db.add(
            Account(
                id=account_id,
                email="r@example.com",
                email_key="r@example.com",
                password_hash="x",
                roles=[],
                disabled=False,
                created_at=_ago(days=400),
                updated_at=_ago(days=400),
                password_changed_at=_ago(days=400),
            )
        )
        db.add_all(
            [
                LoginThrottle(key="old-quiet", failures=3, last_failure_at=_ago(minutes=20)),
                LoginThrottle(
                    key="old-after-wait",
                    failures=9,
                    last_failure_at=_ago(minutes=40),
                    blocked_until=_ago(minutes=25),
                ),
                LoginThrottle(key="keep-recent", failures=3, last_failure_at=_ago(minutes=5)),
                # Its last failure is old, but its wait ended less than a window ago.
                LoginThrottle(
                    key="keep-waiting",
                    failures=9,
                    last_failure_at=_ago(minutes=20),
                    blocked_until=_ago(minutes=5),
                ),
            ]
        )
        for name, expires, revoked in [
            ("old-expired", _ago(days=8), None),
            ("old-revoked", NOW + timedelta(days=20), _ago(days=8)),
            ("keep-live", NOW + timedelta(days=20), None),
            ("keep-recently-revoked", NOW + timedelta(days=20), _ago(days=1)),
        ]:
            family = uuid.uuid5(uuid.NAMESPACE_URL, name)
            db.add(
                SignInSession(
                    id=family,
                    account_id=account_id,
                    scope="profile",
                    created_at=_ago(days=30),
                    expires_at=expires,
                    revoked_at=revoked,
                    revoked_reason="revoked" if revoked else None,
                )
            )
            await db.flush()
            for token, token_expires in [
                (f"{name}/old-token", _ago(days=8)),  # spent long ago, expired long ago
                (f"{name}/recent-token", _ago(days=1)),  # spent: kept to detect its reuse
            ]:
                db.add(
                    RefreshToken(
                        id=uuid.uuid5(uuid.NAMESPACE_URL, token),
                        family_id=family,
                        token_hash=uuid.uuid5(uuid.NAMESPACE_URL, token).bytes * 2,
                        issued_at=_ago(days=20),
                        expires_at=token_expires,
                        used_at=_ago(days=19),
                    )
                )
        db.add_all(
            [
                AuditEvent(occurred_at=_ago(days=366), event="old", details={}),
                AuditEvent(occurred_at=_ago(days=364), event="keep", details={}),
            ]
        )
        db.add(
            Client(
                id="svc",
                type="confidential",
                grant_types="client_credentials",
                scopes="",
                audiences=[],
                redirect_uris=[],
                first_party=True,
                created_at=_ago(days=30),
                updated_at=_ago(days=30),
            )
        )
        await db.flush()
        for name, secret_expires in [
            ("old-rotated-out", _ago(minutes=1)),
            ("keep-in-grace", NOW + timedelta(hours=1)),
            ("keep-current", None),
        ]:
            db.add(
                ClientSecret(
                    client_id="svc",
                    secret_hash=name.encode().ljust(32, b"."),
                    created_at=_ago(days=2),
                    expires_at=secret_expires,
                )
            )
        for jti, assertion_expires in [
            ("old-1", _ago(seconds=1)),
            ("old-2", _ago(minutes=30)),
            ("old-3", _ago(days=3)),
            ("keep-live", NOW + timedelta(minutes=50)),
        ]:
            db.add(UsedClientAssertion(client_id="svc", jti=jti, expires_at=assertion_expires))
        await db.commit()


async def _left(database: Database) -> dict[str, set[str]]:
    async with database.db_session() as db:
        families = {str(row) for row in await db.scalars(select(SignInSession.id))}
        names = {
            str(uuid.uuid5(uuid.NAMESPACE_URL, name)): name
            for name in ("old-expired", "old-revoked", "keep-live", "keep-recently-revoked")
        }
        tokens = await db.scalar(select(func.count()).select_from(RefreshToken))
        return {
            "throttles": set(await db.scalars(select(LoginThrottle.key))),
            "sessions": {names[family] for family in families},
            "audit": set(await db.scalars(select(AuditEvent.event))),
            "tokens": {str(tokens)},
            "secrets": {
                secret.rstrip(b".").decode()
                for secret in await db.scalars(select(ClientSecret.secret_hash))
            },
            "assertions": set(await db.scalars(select(UsedClientAssertion.jti))),
        }


async def test_purge_deletes_what_is_past_its_retention_and_keeps_the_rest(
    database: Database,
) -> None:
    await _seed(database)
    purged = await retention.purge(database, POLICY, NOW, batch_rows=2)
    assert purged == Purged(
        throttles=2,
        refresh_tokens=4,
        sessions=2,
        audit_events=1,
        client_secrets=1,
        client_assertions=3,
    )
    left = await _left(database)
    assert left["throttles"] == {"keep-recent", "keep-waiting"}
    assert left["sessions"] == {"keep-live", "keep-recently-revoked"}
    assert left["audit"] == {"keep"}
    # The two live sessions' recent (spent) tokens remain; the rest went with their
    # sessions or their expiry.
    assert left["tokens"] == {"2"}
    # A secret past its rotation grace goes; a used jti once its assertion has expired.
    assert left["secrets"] == {"keep-in-grace", "keep-current"}
    assert left["assertions"] == {"keep-live"}
    assert await retention.purge(database, POLICY, NOW) == Purged()


async def test_replicas_purging_at_once_delete_everything_once_without_error(
    database: Database,
) -> None:
    await _seed(database)
    results = await asyncio.gather(
        *(retention.purge(database, POLICY, NOW, batch_rows=1) for _ in range(3))
    )
    assert sum(r.audit_events for r in results) == 1
    assert sum(r.sessions for r in results) == 2
    assert sum(r.client_assertions for r in results) == 3
    left = await _left(database)
    assert left["throttles"] == {"keep-recent", "keep-waiting"}
    assert left["audit"] == {"keep"}


async def test_the_service_purges_periodically(database_url: str, database: Database) -> None:
    async with database.db_session() as db:
        db.add(AuditEvent(occurred_at=_ago(days=4000), event="ancient", details={}))
        await db.commit()
    settings = settings_for(database_url, purge_interval_seconds=0.1)
    async with running_app(settings):
        async with asyncio.timeout(20):
            while True:
                async with database.db_session() as db:
                    events = set(await db.scalars(select(AuditEvent.event)))
                if "ancient" not in events:
                    break
                await asyncio.sleep(0.1)


async def test_purge_deletes_expired_mailed_tokens_and_old_finished_mail(
    database: Database,
) -> None:
    async with database.db_session() as db:
        account_id = uuid.uuid4()
        db.add(
            Account(
                id=account_id,
                email="m@example.com",
                email_key="m@example.com",
                password_hash="x",
                roles=[],
                disabled=False,
                created_at=_ago(days=1),
                updated_at=_ago(days=1),
                password_changed_at=_ago(days=1),
            )
        )
        await db.flush()
        for key, expires_at in ((b"old", _ago(seconds=1)), (b"keep", _ago(seconds=-60))):
            db.add(
                EmailToken(
                    token_hash=key.ljust(32, b"."),
                    account_id=account_id,
                    purpose="reset_password",
                    created_at=_ago(minutes=30),
                    expires_at=expires_at,
                )
            )
        for recipient, created_at, next_attempt_at in (
            ("old-sent", _ago(days=8), None),
            ("keep-pending", _ago(days=8), _ago(days=1)),  # never purged while due
            ("keep-recent", _ago(days=1), None),
        ):
            db.add(
                MailMessage(
                    recipient=recipient,
                    sealed=None,
                    created_at=created_at,
                    attempts=1,
                    next_attempt_at=next_attempt_at,
                )
            )
        await db.commit()
    purged = await retention.purge(database, POLICY, NOW)
    assert (purged.email_tokens, purged.mail_messages) == (1, 1)
    async with database.db_session() as db:
        left = set(await db.scalars(select(MailMessage.recipient)))
        tokens = set(await db.scalars(select(EmailToken.token_hash)))
    assert left == {"keep-pending", "keep-recent"}
    assert tokens == {b"keep".ljust(32, b".")}
