"""Administration's account operations without HTTP: erasure, roles, and their audit."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, audit
from auth_service.accounts import AccountNotFoundError, PasswordRules, register
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.models import Account, AuditEvent, RefreshToken, SignInSession
from auth_service.passwords import PasswordHasher
from auth_service.sign_in_sessions import SessionPolicy, start_session
from testsupport.auth_service import STRONG_PASSWORD

pytestmark = pytest.mark.anyio

RULES = PasswordRules(PasswordHasher(4, 1), 0)
POLICY = SessionPolicy(timedelta(hours=1), timedelta(days=1))


async def _account(db: AsyncSession, email: str) -> Account:
    return await register(
        db,
        RULES,
        email=email,
        password=STRONG_PASSWORD,
        username=None,
        now=utcnow(),
        client_address="192.0.2.7",
    )


async def test_deletion_erases_the_account_its_sessions_and_personal_audit_details(
    db: AsyncSession,
) -> None:
    account = await _account(db, "gone@example.com")
    other = await _account(db, "stays@example.com")
    # A registration's rollback (it ends its read before hashing) expired the first one.
    await db.refresh(account)
    session = await start_session(
        db, account, client_id="public", scope="profile", policy=POLICY, now=utcnow()
    )
    await start_session(db, other, client_id="public", scope="profile", policy=POLICY, now=utcnow())
    audit.record(
        db,
        Event.LOGIN_SUCCEEDED,
        now=utcnow(),
        account_id=account.id,
        client_address="192.0.2.7",
        session_id=str(session.session_id),
        login="gone@example.com",
    )
    await db.commit()
    account_id = account.id

    await administration.delete_account(db, account_id, actor="admin-id", now=utcnow())

    assert await db.get(Account, account_id) is None
    sessions = await db.scalar(select(func.count()).select_from(SignInSession))
    tokens = await db.scalar(select(func.count()).select_from(RefreshToken))
    assert (sessions, tokens) == (1, 1)  # the other account's
    events = (await db.scalars(select(AuditEvent).where(AuditEvent.account_id == account_id))).all()
    assert {event.event for event in events} == {"registered", "login_succeeded", "account_deleted"}
    assert all(event.client_address is None for event in events)
    assert "gone@example.com" not in repr([event.details for event in events])
    login = next(event for event in events if event.event == "login_succeeded")
    assert login.details == {"session_id": str(session.session_id)}
    deleted = next(event for event in events if event.event == "account_deleted")
    assert deleted.details == {"actor": "admin-id", "sessions_revoked": 1}
    kept = await db.scalar(select(AuditEvent).where(AuditEvent.account_id == other.id))
    assert kept is not None
    assert kept.client_address == "192.0.2.7"


async def test_deleting_an_unknown_account_changes_nothing(db: AsyncSession) -> None:
    with pytest.raises(AccountNotFoundError):
        await administration.delete_account(db, uuid.uuid4(), actor="cli", now=utcnow())


async def test_set_roles_grants_and_revokes_the_difference_each_audited(db: AsyncSession) -> None:
    account = await _account(db, "roles@example.com")
    await administration.set_roles(db, account.id, ["b", "a"], actor="x", now=utcnow())
    changed = await administration.set_roles(
        db, account.id, ["a", "c", "a"], actor="x", now=utcnow()
    )
    assert changed.roles == ["a", "c"]
    unchanged = await administration.set_roles(db, account.id, ["c", "a"], actor="x", now=utcnow())
    assert unchanged.roles == ["a", "c"]
    rows = (
        await db.execute(
            select(AuditEvent.event, AuditEvent.details).where(
                AuditEvent.account_id == account.id, AuditEvent.event != "registered"
            )
        )
    ).all()
    changes = sorted((event, details["role"]) for event, details in rows)
    assert changes == [
        ("role_granted", "a"),
        ("role_granted", "b"),
        ("role_granted", "c"),
        ("role_revoked", "b"),
    ]


async def test_disable_revokes_every_session_once(db: AsyncSession) -> None:
    account = await _account(db, "off@example.com")
    for _ in range(2):
        await start_session(db, account, client_id=None, scope="", policy=POLICY, now=utcnow())
    await db.commit()
    await administration.disable(db, account.id, actor="x", now=utcnow())
    await administration.disable(db, account.id, actor="x", now=utcnow())
    live = await db.scalar(
        select(func.count()).select_from(SignInSession).where(SignInSession.revoked_at.is_(None))
    )
    assert live == 0
    disabled = await db.scalars(
        select(AuditEvent.details).where(AuditEvent.event == "account_disabled")
    )
    assert [details["sessions_revoked"] for details in disabled] == [2]
