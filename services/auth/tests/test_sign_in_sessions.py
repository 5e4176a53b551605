"""Sign-in sessions and their refresh tokens: rotation as a compare-and-set, reuse detection,
lifetimes, revocation; nothing committed but by the caller."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import sign_in_sessions
from auth_service.clock import utcnow
from auth_service.models import Account, AuditEvent, RefreshToken, SignInSession
from auth_service.sign_in_sessions import RefreshTokenRejectedError, SessionPolicy
from service_kit.db import Database

pytestmark = pytest.mark.anyio

POLICY = SessionPolicy(idle_ttl=timedelta(days=1), absolute_ttl=timedelta(days=7))


async def _account(db: AsyncSession) -> Account:
    now = utcnow()
    account = Account(
        id=uuid.uuid4(),
        email="s@example.com",
        email_key=f"{uuid.uuid4().hex}@example.com",
        password_hash="$2b$04$" + "x" * 53,
        roles=[],
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    db.add(account)
    await db.commit()
    return account


async def _start(db: AsyncSession, client_id: str | None = None, **policy: timedelta) -> str:
    account = await _account(db)
    issued = await sign_in_sessions.start_session(
        db,
        account,
        client_id=client_id,
        scope="profile",
        policy=SessionPolicy(**{**POLICY.__dict__, **policy}),
        now=utcnow(),
    )
    await db.commit()
    return issued.refresh_token


async def _rotate(db: AsyncSession, token: str, client_id: str = "public") -> str:
    """Rotate and commit, as the refresh grant does (a refusal commits what it revoked).

    "public" plays the default client, which continues sessions stored without a client."""
    try:
        issued = await sign_in_sessions.rotate_refresh_token(
            db,
            token,
            client_id=client_id,
            policy=POLICY,
            now=utcnow(),
            or_unnamed=client_id == "public",
        )
    finally:
        await db.commit()
    return issued.refresh_token


async def test_only_a_hash_of_each_token_is_stored(db: AsyncSession) -> None:
    token = await _start(db)
    stored = (await db.scalars(select(RefreshToken))).one()
    assert stored.token_hash == sign_in_sessions.hash_token(token)
    assert token.encode() not in stored.token_hash
    assert len(token) == 43  # 256 bits, URL-safe base64


async def test_rotation_spends_the_token_and_chains_its_successor(db: AsyncSession) -> None:
    first = await _start(db)
    second = await _rotate(db, first)
    third = await _rotate(db, second)
    rows = {row.token_hash: row for row in await db.scalars(select(RefreshToken))}
    assert (
        rows[sign_in_sessions.hash_token(third)].parent_id
        == rows[sign_in_sessions.hash_token(second)].id
    )
    assert rows[sign_in_sessions.hash_token(first)].used_at is not None


async def test_reuse_revokes_the_session_and_is_audited(db: AsyncSession) -> None:
    first = await _start(db)
    second = await _rotate(db, first)
    with pytest.raises(RefreshTokenRejectedError, match="reused"):
        await _rotate(db, first)
    with pytest.raises(RefreshTokenRejectedError, match="revoked"):
        await _rotate(db, second)
    session = (await db.scalars(select(SignInSession))).one()
    assert session.revoked_reason == "reuse"
    events = [event.event for event in await db.scalars(select(AuditEvent))]
    assert events == ["refresh_token_reused"]


async def test_rotation_answers_what_the_access_token_needs(db: AsyncSession) -> None:
    account = await _account(db)
    account.roles = ["admin", "reader"]
    await db.commit()
    started = await sign_in_sessions.start_session(
        db, account, client_id="web", scope="profile", policy=POLICY, now=utcnow()
    )
    await db.commit()
    rotated = await sign_in_sessions.rotate_refresh_token(
        db, started.refresh_token, client_id="web", policy=POLICY, now=utcnow()
    )
    assert (rotated.session_id, rotated.account_id) == (started.session_id, account.id)
    assert (rotated.scope, rotated.roles) == ("profile", ["admin", "reader"])
    session = (await db.scalars(select(SignInSession))).one()
    successor = (
        await db.scalars(
            select(RefreshToken).where(
                RefreshToken.token_hash == sign_in_sessions.hash_token(rotated.refresh_token)
            )
        )
    ).one()
    # The idle lifetime from now, never past the session's absolute end.
    assert successor.expires_at <= session.expires_at


async def test_a_disabled_account_cannot_refresh_and_its_session_ends(db: AsyncSession) -> None:
    token = await _start(db)
    account = (await db.scalars(select(Account))).one()
    account.disabled = True
    await db.commit()
    with pytest.raises(RefreshTokenRejectedError, match="account_disabled"):
        await _rotate(db, token)
    session = (await db.scalars(select(SignInSession))).one()
    assert session.revoked_reason == "account_disabled"
    spent = (await db.scalars(select(RefreshToken))).one()
    assert spent.used_at is None  # refused: the token was not spent


async def test_of_eight_concurrent_rotations_exactly_one_wins(database: Database) -> None:
    async with database.db_session() as db:
        token = await _start(db)

    async def attempt() -> str | None:
        async with database.db_session() as db:
            try:
                return await _rotate(db, token)
            except RefreshTokenRejectedError:
                return None

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert sum(result is not None for result in results) == 1


async def test_another_client_is_refused_and_changes_nothing(db: AsyncSession) -> None:
    token = await _start(db, client_id="web")
    for stranger in ("mobile", "public"):
        with pytest.raises(RefreshTokenRejectedError, match="client_mismatch"):
            await _rotate(db, token, client_id=stranger)
    await _rotate(db, token, client_id="web")


async def test_a_session_without_a_client_continues_under_the_default_client_only(
    db: AsyncSession,
) -> None:
    # Sessions started before clients were registered were stored without a client id.
    token = await _start(db, client_id=None)
    with pytest.raises(RefreshTokenRejectedError, match="client_mismatch"):
        await _rotate(db, token, client_id="web")
    revoke = sign_in_sessions.revoke_by_refresh_token
    assert not await revoke(db, token, client_id="web", now=utcnow())
    successor = await _rotate(db, token, client_id="public")
    assert await revoke(db, successor, client_id="public", now=utcnow(), or_unnamed=True)
    await db.commit()
    with pytest.raises(RefreshTokenRejectedError, match="revoked"):
        await _rotate(db, successor)


async def test_an_idle_token_lapses(db: AsyncSession) -> None:
    token = await _start(db, idle_ttl=timedelta(seconds=0.2))
    await asyncio.sleep(0.3)
    with pytest.raises(RefreshTokenRejectedError, match="expired"):
        await _rotate(db, token)


async def test_unknown_and_malformed_tokens_are_refused(db: AsyncSession) -> None:
    for token in ("A" * 43, "short", "x" * 10_000, "é" * 43):
        with pytest.raises(RefreshTokenRejectedError):
            await _rotate(db, token)


async def test_revocation_by_token_and_of_every_session(db: AsyncSession) -> None:
    token = await _start(db, client_id="web")
    revoke = sign_in_sessions.revoke_by_refresh_token
    assert not await revoke(db, token, client_id="other", now=utcnow())
    assert await revoke(db, token, client_id="web", now=utcnow())
    await db.commit()
    with pytest.raises(RefreshTokenRejectedError, match="revoked"):
        await _rotate(db, token, client_id="web")
    account = (await db.scalars(select(Account))).one()
    keep = await sign_in_sessions.start_session(
        db, account, client_id=None, scope="profile", policy=POLICY, now=utcnow()
    )
    other = await sign_in_sessions.start_session(
        db, account, client_id=None, scope="profile", policy=POLICY, now=utcnow()
    )
    await db.commit()
    revoked = await sign_in_sessions.revoke_account_sessions(
        db, account.id, sign_in_sessions.RevokedReason.LOGOUT_ALL, utcnow(), keep=keep.session_id
    )
    await db.commit()
    assert revoked == 1
    await _rotate(db, keep.refresh_token)
    with pytest.raises(RefreshTokenRejectedError):
        await _rotate(db, other.refresh_token)


async def test_a_rotation_is_undone_with_the_callers_transaction(database: Database) -> None:
    async with database.db_session() as db:
        token = await _start(db)
    async with database.db_session() as db:
        await sign_in_sessions.rotate_refresh_token(
            db, token, client_id="public", policy=POLICY, now=utcnow(), or_unnamed=True
        )
        await db.rollback()  # the operation failed after the rotation: nothing was spent
    async with database.db_session() as db:
        await _rotate(db, token)
