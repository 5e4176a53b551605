"""Sign-in sessions: what the API calls a session (`sid`, "revokes the session"). Each is
one sign-in and the chain of refresh tokens that continue it (RFC 9700's token family),
revoked as a whole. Refresh tokens are opaque, stored as SHA-256 hashes, rotated on every use.

Rotation is one compare-and-set, `UPDATE refresh_tokens SET used_at = now WHERE token_hash
= :hash AND used_at IS NULL ...`: the database lets exactly one of any number of concurrent
uses match, on SQLite (one writer at a time) and PostgreSQL (the row lock, then a re-check).
Every other use of that token, concurrent or later, is a reuse (RFC 9700 §4.14.2): the
whole session is revoked.

These functions write in the caller's transaction and never commit: the operations that
call them (`grants`, `credentials`, `administration`) do.
"""

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Update, bindparam, insert, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from auth_service import audit, events
from auth_service.audit import Event
from auth_service.events import EventType
from auth_service.models import Account, RefreshToken, SignInSession
from auth_service.replica_cache import REVOKED_SESSIONS, announce

TOKEN_BYTES = 32
# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class RevokedReason(StrEnum):
    REUSE = "reuse"
    REVOKED = "revoked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - an event name
    LOGOUT_ALL = "logout_all"
    ACCOUNT_DISABLED = "account_disabled"
    CLIENT_DELETED = "client_deleted"
    ACCOUNT_DELETED = "account_deleted"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name
    SIGNED_OUT = "signed_out"
    CODE_REPLAYED = "code_replayed"


@dataclass(frozen=True)
class SessionPolicy:
    """An unused refresh token lapses after `idle_ttl`; no session outlives `absolute_ttl`."""

    idle_ttl: timedelta
    absolute_ttl: timedelta


@dataclass(frozen=True)
class IssuedSession:
    """What an access token is made from, and the new refresh token (plain values)."""

    session_id: uuid.UUID
    account_id: uuid.UUID
    scope: str
    roles: list[str]
    refresh_token: str
    email_verified: bool = False


class RefreshTokenRejectedError(Exception):
    """The refresh token cannot be used; `reason` is for logs, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii", "replace")).digest()


def well_formed(token: str) -> bool:
    return _TOKEN_SHAPE.fullmatch(token) is not None


def _new_token(
    session_id: uuid.UUID, parent_id: uuid.UUID | None, expires_at: datetime, now: datetime
) -> tuple[dict[str, object], str]:
    """A new token and its row's values (for a Core INSERT: no ORM unit of work)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row: dict[str, object] = {
        "id": uuid.uuid4(),
        "family_id": session_id,
        "parent_id": parent_id,
        "token_hash": hash_token(token),
        "issued_at": now,
        "expires_at": expires_at,
    }
    return row, token


_INSERT_TOKEN = insert(RefreshToken)


async def start_session(
    db: AsyncSession,
    account: Account,
    *,
    client_id: str | None,
    scope: str,
    policy: SessionPolicy,
    now: datetime,
) -> IssuedSession:
    """A new session and its first refresh token."""
    session_id = uuid.uuid4()
    expires_at = now + policy.absolute_ttl
    await db.execute(
        insert(SignInSession).values(
            id=session_id,
            account_id=account.id,
            client_id=client_id,
            scope=scope,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
    )
    row, token = _new_token(session_id, None, min(now + policy.idle_ttl, expires_at), now)
    await db.execute(_INSERT_TOKEN, [row])
    return IssuedSession(
        session_id, account.id, scope, list(account.roles), token, account.email_verified
    )


def _of_session(column: str, type_: TypeEngine[Any], source: str = "session_families") -> Any:
    """A column of the spent token's session (or account), for the compare-and-set's
    RETURNING clause: a scalar subquery written out, because SQLAlchemy renders every
    column in RETURNING unqualified, which makes a correlated `select()` ambiguous."""
    return literal_column(
        # Constant table and column names only; nothing from a request is formatted in.
        f"(SELECT {column} FROM {source} WHERE session_families.id = refresh_tokens.family_id)",  # noqa: S608
        type_,
    )


_RETURNED = (
    RefreshToken.id,
    RefreshToken.family_id,
    _of_session("session_families.expires_at", SignInSession.expires_at.type),
    _of_session("session_families.scope", SignInSession.scope.type),
    _of_session("session_families.account_id", SignInSession.account_id.type),
    _of_session(
        "accounts.roles",
        Account.roles.type,
        "session_families JOIN accounts ON accounts.id = session_families.account_id",
    ),
    _of_session(
        "accounts.email_verified",
        Account.email_verified.type,
        "session_families JOIN accounts ON accounts.id = session_families.account_id",
    ),
)


def _compare_and_set(*, or_unnamed: bool) -> Update:
    """The rotation's compare-and-set, built once (per shape of the client test) with bound
    parameters `hash`, `now` and `client`: building a statement costs more CPU
    than running it. It matches only an unspent, unexpired token of a live session of
    this client (or, `or_unnamed`, of a session stored without one) whose account is
    enabled, and returns what the access token needs."""
    same_client = SignInSession.client_id == bindparam("client")
    if or_unnamed:
        same_client = or_(same_client, SignInSession.client_id.is_(None))
    usable_session = select(SignInSession.id).where(
        SignInSession.revoked_at.is_(None),
        SignInSession.expires_at > bindparam("now"),
        same_client,
        SignInSession.account_id.in_(select(Account.id).where(Account.disabled.is_(False))),
    )
    return (
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == bindparam("hash"),
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > bindparam("now"),
            RefreshToken.family_id.in_(usable_session),
        )
        .values(used_at=bindparam("now"))
        .returning(*_RETURNED)
        .execution_options(synchronize_session=False)
    )


_SPEND = {True: _compare_and_set(or_unnamed=True), False: _compare_and_set(or_unnamed=False)}
_TOUCH_SESSION = (
    update(SignInSession)
    .where(SignInSession.id == bindparam("session"))
    .values(last_used_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


def _same_client(session_client: str | None, client_id: str, or_unnamed: bool) -> bool:
    """Whether a session belongs to the client: its own, or one stored without a client
    id (before clients were registered) when the client is the default one."""
    return session_client == client_id or (or_unnamed and session_client is None)


async def rotate_refresh_token(
    db: AsyncSession,
    token: str,
    *,
    client_id: str,
    policy: SessionPolicy,
    now: datetime,
    client_address: str | None = None,
    or_unnamed: bool = False,
) -> IssuedSession:
    """Spend `token` and issue its successor; or raise `RefreshTokenRejectedError`.

    The token's session must be `client_id`'s; with `or_unnamed` (the default client) a
    session stored without a client id (started before clients were registered) is too.

    Three statements on the hot path: the compare-and-set, which also returns (as scalar
    subqueries) what the access token needs, the successor's INSERT, and the session's
    `last_used_at` (by primary key). A token that was
    already spent revokes its session, and so does a live one of a disabled account: the
    error is raised with that revocation written, for the caller to commit. A token
    presented by another client than its session's changes nothing.
    """
    if not well_formed(token):
        raise RefreshTokenRejectedError("malformed")
    token_hash = hash_token(token)
    parameters = {"hash": token_hash, "now": now, "client": client_id}
    spent = (await db.execute(_SPEND[or_unnamed], parameters)).first()
    if spent is None:
        await _explain_refusal(db, token_hash, client_id, or_unnamed, now, client_address)
        raise AssertionError("unreachable")  # _explain_refusal always raises

    token_id, session_id, session_expires_at, scope, account_id, roles, email_verified = spent
    row, new_token = _new_token(
        session_id, token_id, min(now + policy.idle_ttl, session_expires_at), now
    )
    await db.execute(_INSERT_TOKEN, [row])
    await db.execute(_TOUCH_SESSION, {"session": session_id, "now": now})
    return IssuedSession(
        session_id, account_id, scope, list(roles), new_token, bool(email_verified)
    )


async def _explain_refusal(
    db: AsyncSession,
    token_hash: bytes,
    client_id: str,
    or_unnamed: bool,
    now: datetime,
    client_address: str | None,
) -> None:
    """Why the compare-and-set matched nothing, as the error it raises; a spent token
    revokes its session, and so does a live one of a disabled account."""
    found = (
        await db.execute(
            select(
                RefreshToken.used_at,
                RefreshToken.expires_at,
                SignInSession.id,
                SignInSession.account_id,
                SignInSession.client_id,
                SignInSession.revoked_at,
                SignInSession.expires_at,
                Account.disabled,
            )
            .join(SignInSession, SignInSession.id == RefreshToken.family_id)
            .join(Account, Account.id == SignInSession.account_id)
            .where(RefreshToken.token_hash == token_hash)
        )
    ).first()
    if found is None:
        raise RefreshTokenRejectedError("unknown")
    (
        used_at,
        token_expires_at,
        session_id,
        account_id,
        session_client,
        revoked,
        session_expires_at,
        disabled,
    ) = found
    if used_at is not None:
        if revoked is None:
            await revoke_session(db, session_id, RevokedReason.REUSE, now)
            audit.record(
                db,
                Event.REFRESH_TOKEN_REUSED,
                now=now,
                account_id=account_id,
                client_address=client_address,
                client_id=client_id,
                session_id=str(session_id),
            )
        raise RefreshTokenRejectedError("reused")
    if revoked is not None:
        raise RefreshTokenRejectedError("revoked")
    if not _same_client(session_client, client_id, or_unnamed):
        raise RefreshTokenRejectedError("client_mismatch")
    if token_expires_at > now and session_expires_at > now and disabled:
        await revoke_session(db, session_id, RevokedReason.ACCOUNT_DISABLED, now)
        raise RefreshTokenRejectedError("account_disabled")
    raise RefreshTokenRejectedError("expired")


async def revoke_session(
    db: AsyncSession, session_id: uuid.UUID, reason: RevokedReason, now: datetime
) -> None:
    """Revoke one session, and publish `session.revoked`. Revoking twice keeps the first
    reason (and publishes once)."""
    account_id = await db.scalar(
        update(SignInSession)
        .where(SignInSession.id == session_id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason.value)
        .returning(SignInSession.account_id)
        .execution_options(synchronize_session=False)
    )
    if account_id is not None:
        await publish_revoked(db, account_id, [session_id], reason, now)


async def publish_revoked(
    db: AsyncSession,
    account_id: uuid.UUID,
    session_ids: list[uuid.UUID],
    reason: RevokedReason,
    now: datetime,
) -> None:
    """Publish `session.revoked` for each session (in the caller's transaction): every
    revocation calls it, so that subscribers refuse those sessions' access tokens, and so
    that every auth replica forgets them as live (introspection's cache) when it commits."""
    for session_id in sorted(session_ids):
        await events.publish(
            db,
            EventType.SESSION_REVOKED,
            account_id=account_id,
            session_id=session_id,
            data={"reason": reason.value},
            now=now,
        )
    await announce(db, REVOKED_SESSIONS, [str(session_id) for session_id in session_ids])


async def revoke_by_refresh_token(
    db: AsyncSession,
    token: str,
    *,
    client_id: str,
    now: datetime,
    client_address: str | None = None,
    or_unnamed: bool = False,
) -> bool:
    """RFC 7009: revoke the session a refresh token (spent or not) belongs to.

    False (and nothing changed) for an unknown token or one of another client's sessions
    (`or_unnamed` as for `rotate_refresh_token`).
    """
    if not well_formed(token):
        return False
    session = await db.scalar(
        select(SignInSession)
        .join(RefreshToken, RefreshToken.family_id == SignInSession.id)
        .where(RefreshToken.token_hash == hash_token(token))
    )
    if session is None or not _same_client(session.client_id, client_id, or_unnamed):
        return False
    if session.revoked_at is None:
        await revoke_session(db, session.id, RevokedReason.REVOKED, now)
        audit.record(
            db,
            Event.SESSION_REVOKED,
            now=now,
            account_id=session.account_id,
            client_address=client_address,
            client_id=client_id,
            session_id=str(session.id),
        )
    return True


async def revoke_account_sessions(
    db: AsyncSession,
    account_id: uuid.UUID,
    reason: RevokedReason,
    now: datetime,
    *,
    keep: uuid.UUID | None = None,
) -> int:
    """Revoke every live session of an account but `keep`, publishing `session.revoked` for
    each; how many."""
    statement = (
        update(SignInSession)
        .where(SignInSession.account_id == account_id, SignInSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    if keep is not None:
        statement = statement.where(SignInSession.id != keep)
    revoked = list((await db.scalars(statement.returning(SignInSession.id))).all())
    await publish_revoked(db, account_id, revoked, reason, now)
    return len(revoked)


async def revoke_client_sessions(
    db: AsyncSession, client_id: str, reason: RevokedReason, now: datetime
) -> int:
    """Revoke every live session a client started, publishing `session.revoked` for each;
    how many."""
    revoked = (
        await db.execute(
            update(SignInSession)
            .where(SignInSession.client_id == client_id, SignInSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason.value)
            .returning(SignInSession.account_id, SignInSession.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    for account_id, session_id in sorted(revoked):
        await publish_revoked(db, account_id, [session_id], reason, now)
    return len(revoked)


def _live(now: datetime) -> tuple[Any, ...]:
    """A session that can still be continued: not revoked, not past its absolute lifetime,
    and holding an unspent refresh token that has not lapsed; or a browser sign-in session
    (`browser_sessions`: a cookie, no refresh tokens) neither revoked nor expired."""
    usable_token = (
        select(RefreshToken.id)
        .where(
            RefreshToken.family_id == SignInSession.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.expires_at > now,
        )
        .exists()
    )
    return (
        SignInSession.revoked_at.is_(None),
        SignInSession.expires_at > now,
        or_(usable_token, SignInSession.kind == "browser"),
    )


async def live_sessions(
    db: AsyncSession, account_id: uuid.UUID, now: datetime
) -> list[SignInSession]:
    """The account's live sessions, the most recently used first."""
    found = await db.scalars(
        select(SignInSession)
        .where(SignInSession.account_id == account_id, *_live(now))
        .order_by(SignInSession.last_used_at.desc(), SignInSession.id)
    )
    return list(found)


async def revoke_live_session(
    db: AsyncSession,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    reason: RevokedReason,
    now: datetime,
) -> bool:
    """Revoke one live session of the account, and publish `session.revoked`; False
    (nothing changed) when the account has no such live session, whoever else's it may be."""
    result = await db.execute(
        update(SignInSession)
        .where(
            SignInSession.id == session_id,
            SignInSession.account_id == account_id,
            SignInSession.revoked_at.is_(None),
            SignInSession.expires_at > now,
        )
        .values(revoked_at=now, revoked_reason=reason.value)
        .execution_options(synchronize_session=False)
    )
    revoked = bool(getattr(result, "rowcount", 0))
    if revoked:
        await publish_revoked(db, account_id, [session_id], reason, now)
    return revoked


async def live_session_account(
    db: AsyncSession, account_id: uuid.UUID, session_id: uuid.UUID | None, now: datetime
) -> Account | None:
    """The account of an access token, when the session it names (`sid`) is neither revoked
    nor expired and the account is enabled; None otherwise (one query)."""
    if session_id is None:
        return None
    return await db.scalar(
        select(Account)
        .join(SignInSession, SignInSession.account_id == Account.id)
        .where(
            Account.id == account_id,
            Account.disabled.is_(False),
            SignInSession.id == session_id,
            SignInSession.revoked_at.is_(None),
            SignInSession.expires_at > now,
        )
    )
