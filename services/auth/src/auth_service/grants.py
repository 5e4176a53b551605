"""The token endpoint's grants (RFC 6749 §4.3 password, §6 refresh_token) and the revocation
endpoint (RFC 7009), without HTTP. Each is an operation: it commits."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, sign_in_sessions
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.key_store import SigningKeyStore
from auth_service.oauth import OAuthError, parse_scope
from auth_service.passwords import PasswordHasher
from auth_service.sign_in import (
    BadCredentialsError,
    PasswordAttempt,
    ThrottledError,
    check_password,
)
from auth_service.sign_in_sessions import IssuedSession, RefreshTokenRejectedError, SessionPolicy
from auth_service.throttling import ThrottlePolicy
from auth_service.tokens import TokenIssuer, issue_access_token

BAD_CREDENTIALS = "The username or password is incorrect."
BAD_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked."  # noqa: S105 - a message


@dataclass(frozen=True)
class Issuance:
    """Everything a grant needs besides the database; one per application."""

    hasher: PasswordHasher
    keys: SigningKeyStore
    issuer: TokenIssuer
    sessions: SessionPolicy
    throttle: ThrottlePolicy
    scopes: frozenset[str]


@dataclass(frozen=True)
class GrantRequest:
    """What every grant request says besides its grant: the client, the scope, the caller."""

    client_id: str | None
    scope: str | None
    client_address: str | None


def _token_response(
    issuance: Issuance, issued: IssuedSession, scope: str, client_id: str | None
) -> dict[str, Any]:
    """RFC 6749 §5.1; `now` is taken after the database work, so `exp` is not short."""
    now = utcnow()
    access_token = issue_access_token(
        issuance.keys,
        issuance.issuer,
        account_id=issued.account_id,
        session_id=issued.session_id,
        client_id=client_id,
        scope=scope,
        roles=issued.roles,
        now=now,
    )
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(issuance.issuer.ttl.total_seconds()),
        "refresh_token": issued.refresh_token,
        "scope": scope,
    }


def throttled(seconds: int) -> OAuthError:
    """429 with Retry-After. `invalid_grant`, the code RFC 6749 §5.2 gives to credentials
    that do not work, which every stock client knows; `slow_down` is RFC 8628's, for the
    device flow's polling, and unknown to most token clients."""
    return OAuthError(
        "invalid_grant",
        f"Too many failed sign-ins; try again in {seconds} seconds.",
        status=429,
        headers={"Retry-After": str(seconds)},
    )


async def password_grant(
    db: AsyncSession, issuance: Issuance, request: GrantRequest, *, username: str, password: str
) -> dict[str, Any]:
    """Sign in with an email or username and a password (the throttled check of
    `sign_in.check_password`), then start a session."""
    scope = parse_scope(request.scope, issuance.scopes)
    keys_ready(issuance.keys)
    attempt = PasswordAttempt(
        username, password, request.client_address, "password_grant", request.client_id
    )
    try:
        account = await check_password(db, issuance.hasher, issuance.throttle, attempt)
    except ThrottledError as exc:
        raise throttled(exc.retry_after) from None
    except BadCredentialsError:
        raise OAuthError("invalid_grant", BAD_CREDENTIALS) from None

    now = utcnow()
    if issuance.hasher.needs_rehash(account.password_hash):
        account.password_hash = await issuance.hasher.hash(password)
        audit.record(db, Event.PASSWORD_REHASHED, now=now, account_id=account.id)
    issued = await sign_in_sessions.start_session(
        db, account, client_id=request.client_id, scope=scope, policy=issuance.sessions, now=now
    )
    audit.record(
        db,
        Event.LOGIN_SUCCEEDED,
        now=now,
        account_id=account.id,
        client_address=request.client_address,
        client_id=request.client_id,
        session_id=str(issued.session_id),
    )
    await db.commit()
    return _token_response(issuance, issued, scope, request.client_id)


async def refresh_grant(
    db: AsyncSession, issuance: Issuance, request: GrantRequest, *, refresh_token: str
) -> dict[str, Any]:
    """Spend a refresh token for a new access token and its successor (RFC 6749 §6).

    A narrower scope may be asked for; it applies to this access token only, the session
    keeps the scope it was granted.
    """
    keys_ready(issuance.keys)
    try:
        issued = await sign_in_sessions.rotate_refresh_token(
            db,
            refresh_token,
            client_id=request.client_id,
            policy=issuance.sessions,
            now=utcnow(),
            client_address=request.client_address,
        )
    except RefreshTokenRejectedError:
        # A reused token, or one of a disabled account, revoked its session: keep that.
        await db.commit()
        raise OAuthError("invalid_grant", BAD_REFRESH_TOKEN) from None
    await db.commit()
    granted = issued.scope
    scope = granted if request.scope is None else parse_scope(request.scope, granted.split())
    return _token_response(issuance, issued, scope, request.client_id)


async def revoke(
    db: AsyncSession, token: str, *, client_id: str | None, client_address: str | None
) -> None:
    """RFC 7009: revoke the session of a refresh token. An unknown token, an access token or
    another client's session changes nothing, and is no error either (§2.2)."""
    await sign_in_sessions.revoke_by_refresh_token(
        db, token, client_id=client_id, now=utcnow(), client_address=client_address
    )
    await db.commit()


def keys_ready(keys: SigningKeyStore) -> None:
    """Refuse before any work while this replica has no signing key loaded.

    503 with Retry-After: the status says "try again", as HTTP clients and retry
    middleware read it. RFC 6749 §5.2 has no code for a server that cannot serve; of its
    codes, `invalid_request` is the one that makes no claim about the client's
    credentials (`invalid_grant` would make a client drop a good refresh token).
    """
    try:
        keys.signing_key(utcnow())
    except LookupError:
        raise OAuthError(
            "invalid_request",
            "No signing key is available yet; try again shortly.",
            status=503,
            headers={"Retry-After": "1"},
        ) from None
