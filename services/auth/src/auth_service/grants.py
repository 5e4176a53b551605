"""The token endpoint's grants (RFC 6749 §4.3 password, §6 refresh_token), without HTTP."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, sessions, throttling
from auth_service.accounts import find_by_login
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.keys import SigningKeyStore
from auth_service.oauth import OAuthError, parse_scope
from auth_service.passwords import PasswordHasher, normalize
from auth_service.sessions import IssuedSession, RefreshTokenRejectedError, SessionPolicy
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


def _throttled(seconds: int) -> OAuthError:
    return OAuthError(
        "slow_down",
        f"Too many failed sign-ins; try again in {seconds} seconds.",
        status=429,
        headers={"Retry-After": str(seconds)},
    )


async def password_grant(
    db: AsyncSession, issuance: Issuance, request: GrantRequest, *, username: str, password: str
) -> dict[str, Any]:
    """Sign in with an email or username and a password.

    Unknown account and wrong password take the same path (a dummy hash is checked), so
    they answer the same, in the same time, and count against the same throttles.
    """
    scope = parse_scope(request.scope, issuance.scopes)
    keys_ready(issuance.keys)
    now = utcnow()
    account = await find_by_login(db, username)
    account_key = throttling.account_key(str(account.id) if account else None, username)
    address_key = throttling.address_key(request.client_address)
    wait = await throttling.retry_after(db, [account_key, address_key], now)
    await db.commit()  # end the read; the writes below start their own transaction
    if wait is not None:
        raise _throttled(wait)

    verified = await issuance.hasher.verify(password, account.password_hash if account else None)
    now = utcnow()
    if not verified or account is None or account.disabled:
        policy = issuance.throttle
        await throttling.record_failure(db, account_key, policy.free_per_account, policy, now)
        await throttling.record_failure(db, address_key, policy.free_per_address, policy, now)
        audit.record(
            db,
            Event.LOGIN_FAILED,
            now=now,
            account_id=account.id if account else None,
            client_address=request.client_address,
            client_id=request.client_id,
        )
        await db.commit()
        raise OAuthError("invalid_grant", BAD_CREDENTIALS)

    await throttling.clear(db, account_key)
    if issuance.hasher.needs_rehash(account.password_hash):
        account.password_hash = await issuance.hasher.hash(normalize(password))
        audit.record(db, Event.PASSWORD_REHASHED, now=now, account_id=account.id)
    issued = await sessions.start_session(
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
        issued = await sessions.rotate_refresh_token(
            db,
            refresh_token,
            client_id=request.client_id,
            policy=issuance.sessions,
            now=utcnow(),
            client_address=request.client_address,
        )
    except RefreshTokenRejectedError:
        raise OAuthError("invalid_grant", BAD_REFRESH_TOKEN) from None
    granted = issued.scope
    scope = granted if request.scope is None else parse_scope(request.scope, granted.split())
    return _token_response(issuance, issued, scope, request.client_id)


def keys_ready(keys: SigningKeyStore) -> None:
    """Refuse before any work while this replica has no signing key loaded."""
    try:
        keys.signing_key(utcnow())
    except LookupError:
        raise OAuthError(
            "temporarily_unavailable",
            "No signing key is available yet; try again shortly.",
            status=503,
            headers={"Retry-After": "1"},
        ) from None
