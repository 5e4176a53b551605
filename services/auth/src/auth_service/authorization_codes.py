"""Authorization codes (RFC 6749 §4.1) with PKCE (RFC 7636, S256 only).

A code is 256 random bits, stored only as its SHA-256, with the request it answers: the
client, the exact redirect URI, the PKCE challenge, the scope, the nonce, who signed in
and when. It lives at most a minute and is spent by one compare-and-set on `used_at`,
so exactly one of any number of concurrent exchanges wins. A second exchange of a spent
code is a replay (RFC 6749 §4.1.2): the session the first one started is revoked.

These functions write in the caller's transaction and never commit.
"""

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit
from auth_service.audit import Event
from auth_service.models import AuthorizationCode
from auth_service.sign_in_sessions import RevokedReason, hash_token, revoke_session, well_formed

# RFC 7636 §4.1: 43-128 unreserved characters; an S256 challenge is 43 base64url ones.
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


class CodeRejectedError(Exception):
    """The code cannot be exchanged; `reason` is for logs, never for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code was issued for."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    nonce: str | None
    account_id: uuid.UUID
    browser_session_id: uuid.UUID
    auth_time: datetime


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def well_formed_challenge(challenge: str) -> bool:
    return _S256_CHALLENGE.fullmatch(challenge) is not None


async def issue_code(db: AsyncSession, grant: CodeGrant, *, now: datetime, ttl: timedelta) -> str:
    """Store a fresh code for `grant`; the code itself is returned, never stored."""
    code = secrets.token_urlsafe(32)
    await db.execute(
        insert(AuthorizationCode).values(
            code_hash=hash_token(code),
            client_id=grant.client_id,
            redirect_uri=grant.redirect_uri,
            code_challenge=grant.code_challenge,
            scope=grant.scope,
            nonce=grant.nonce,
            account_id=grant.account_id,
            browser_session_id=grant.browser_session_id,
            auth_time=grant.auth_time,
            expires_at=now + ttl,
        )
    )
    return code


async def redeem_code(
    db: AsyncSession,
    code: str,
    *,
    client_id: str,
    redirect_uri: str | None,
    code_verifier: str | None,
    now: datetime,
    client_address: str | None = None,
) -> CodeGrant:
    """Spend `code` for `client_id`; what it was issued for, or `CodeRejectedError`.

    The code is spent before the other checks, so a wrong verifier or redirect URI burns
    it too (an attacker holding a stolen code gets one try). A replay revokes the session
    the first exchange started, written for the caller to commit.
    """
    if not well_formed(code):
        raise CodeRejectedError("malformed")
    code_hash = hash_token(code)
    spent = (
        await db.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
            .returning(AuthorizationCode)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if spent is None:
        await _refuse_replay(db, code_hash, now, client_address)
        raise CodeRejectedError("unknown")
    if spent.expires_at <= now:
        raise CodeRejectedError("expired")
    if spent.client_id != client_id:
        raise CodeRejectedError("client_mismatch")
    if redirect_uri != spent.redirect_uri:
        raise CodeRejectedError("redirect_uri_mismatch")
    if code_verifier is None or not _VERIFIER.fullmatch(code_verifier):
        raise CodeRejectedError("bad_verifier")
    if not hmac.compare_digest(s256(code_verifier), spent.code_challenge):
        raise CodeRejectedError("pkce_mismatch")
    return CodeGrant(
        client_id=spent.client_id,
        redirect_uri=spent.redirect_uri,
        code_challenge=spent.code_challenge,
        scope=spent.scope,
        nonce=spent.nonce,
        account_id=spent.account_id,
        browser_session_id=spent.browser_session_id,
        auth_time=spent.auth_time,
    )


async def record_issued_session(db: AsyncSession, code: str, session_id: uuid.UUID) -> None:
    """Remember the session a code's exchange started, for a replay to revoke."""
    await db.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == hash_token(code))
        .values(issued_session_id=session_id)
        .execution_options(synchronize_session=False)
    )


async def _refuse_replay(
    db: AsyncSession, code_hash: bytes, now: datetime, client_address: str | None
) -> None:
    """A spent code presented again: revoke what its first exchange issued, and raise."""
    used = (
        await db.execute(
            select(
                AuthorizationCode.issued_session_id,
                AuthorizationCode.account_id,
                AuthorizationCode.client_id,
            ).where(AuthorizationCode.code_hash == code_hash)
        )
    ).first()
    if used is None:
        return
    session_id, account_id, client_id = used
    if session_id is not None:
        await revoke_session(db, session_id, RevokedReason.CODE_REPLAYED, now)
    audit.record(
        db,
        Event.AUTHORIZATION_CODE_REPLAYED,
        now=now,
        account_id=account_id,
        client_address=client_address,
        client_id=client_id,
        session_id=str(session_id) if session_id else None,
    )
    raise CodeRejectedError("replayed")
