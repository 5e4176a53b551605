"""The token endpoint's operation and its grants, without HTTP: RFC 6749 §4.1
`authorization_code` (with PKCE, and an OpenID Connect ID token), §4.3 `password`, §6
`refresh_token`, §4.4 `client_credentials`; and the revocation endpoint's (RFC 7009).
Each operation commits.

Every request is a registered client's (`client_auth`), and a client may use only the
grants it was registered with. A token's scopes are among its client's (and SCOPES); its
audience is among the client's (`resource`, RFC 8707, picks one; the first by default, or
ACCESS_TOKEN_AUDIENCE for a client registered without any).
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, authorization_codes, client_auth, sign_in_sessions
from auth_service.audit import Event
from auth_service.authorization_codes import CodeRejectedError
from auth_service.client_auth import ClientAuthenticator, PresentedCredentials
from auth_service.clients import RegisteredClient
from auth_service.clock import utcnow
from auth_service.id_tokens import issue_id_token
from auth_service.key_store import SigningKeyStore
from auth_service.models import Account
from auth_service.oauth import OAuthError, parse_scope, require
from auth_service.passwords import PasswordHasher, PasswordWorkBusyError
from auth_service.sign_in import (
    BadCredentialsError,
    PasswordAttempt,
    ThrottledError,
    check_password,
)
from auth_service.sign_in_sessions import (
    IssuedSession,
    RefreshTokenRejectedError,
    SessionPolicy,
)
from auth_service.throttling import ThrottlePolicy
from auth_service.tokens import TokenIssuer, issue_access_token

GRANT_TYPES = ("authorization_code", "password", "refresh_token", "client_credentials")
TOKEN_PATH = "/auth/token"  # noqa: S105 - a path
BAD_CREDENTIALS = "The username or password is incorrect."
BAD_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked."  # noqa: S105 - a message
BAD_CODE = "The authorization code is invalid, expired or already used."


@dataclass(frozen=True)
class Issuance:
    """Everything a grant needs besides the database; one per application."""

    hasher: PasswordHasher
    keys: SigningKeyStore
    issuer: TokenIssuer
    sessions: SessionPolicy
    throttle: ThrottlePolicy
    scopes: frozenset[str]
    clients: ClientAuthenticator


@dataclass(frozen=True)
class GrantRequest:
    """A token request from an authenticated client."""

    client: RegisteredClient
    scope: str | None
    resource: str | None
    client_address: str | None


async def token_request(
    db: AsyncSession,
    issuance: Issuance,
    form: dict[str, str],
    credentials: PresentedCredentials,
    client_address: str | None,
) -> dict[str, Any]:
    """The token endpoint: check the request, authenticate its client, run its grant.

    Commits what the grant wrote (the password grant's throttle and a refresh's rotation
    commit as they go, see there); the answer is RFC 6749 §5.1's.
    """
    grant_type = require(form, "grant_type")
    if grant_type not in GRANT_TYPES:
        raise OAuthError("unsupported_grant_type", f"Supported: {', '.join(GRANT_TYPES)}.")
    # A missing parameter is the request's fault whoever sends it: refused before any work.
    if grant_type == "password":
        username, password = require(form, "username"), require(form, "password")
    elif grant_type == "refresh_token":
        refresh_token = require(form, "refresh_token")
    elif grant_type == "authorization_code":
        code = require(form, "code")
        code_verifier = require(form, "code_verifier")
        redirect_uri = require(form, "redirect_uri")
    client = await client_auth.authenticate(
        db,
        issuance.clients,
        credentials,
        endpoint=f"{issuance.issuer.issuer}{TOKEN_PATH}",
        client_address=client_address,
        now=utcnow(),
    )
    if grant_type not in client.grant_types:
        raise OAuthError(
            "unauthorized_client", f"This client is not registered for the {grant_type} grant."
        )
    request = GrantRequest(client, form.get("scope"), form.get("resource"), client_address)
    if grant_type == "password":
        return await password_grant(db, issuance, request, username=username, password=password)
    if grant_type == "refresh_token":
        return await refresh_grant(db, issuance, request, refresh_token=refresh_token)
    if grant_type == "authorization_code":
        return await authorization_code_grant(
            db, issuance, request, code=code, redirect_uri=redirect_uri, verifier=code_verifier
        )
    return client_credentials_grant(issuance, request)


def _allowed_scopes(issuance: Issuance, client: RegisteredClient) -> frozenset[str]:
    # Both: a scope removed from SCOPES is gone for every client at once.
    return client.scopes & issuance.scopes


def _audience(issuance: Issuance, request: GrantRequest) -> str:
    """RFC 8707: `resource` names one of the client's audiences; none names the first."""
    audiences = request.client.audiences or (issuance.issuer.audience,)
    if request.resource is None:
        return audiences[0]
    if request.resource not in audiences:
        raise OAuthError("invalid_target", "The resource is not one this client may address.")
    return request.resource


def _lifetime(issuance: Issuance, client: RegisteredClient) -> timedelta:
    override = client.access_token_ttl_seconds
    if override is None:
        return issuance.issuer.ttl
    return min(timedelta(seconds=override), issuance.issuer.ttl)


def _token_response(
    issuance: Issuance,
    request: GrantRequest,
    *,
    subject: str,
    scope: str,
    roles: list[str],
    session_id: uuid.UUID | None,
    audience: str,
    refresh_token: str | None,
    email_verified: bool | None = None,
) -> dict[str, Any]:
    """RFC 6749 §5.1; `now` is taken after the database work, so `exp` is not short."""
    lifetime = _lifetime(issuance, request.client)
    access_token = issue_access_token(
        issuance.keys,
        issuance.issuer,
        subject=subject,
        client_id=request.client.id,
        scope=scope,
        roles=roles,
        session_id=session_id,
        now=utcnow(),
        audience=audience,
        ttl=lifetime,
        email_verified=email_verified,
    )
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    body["scope"] = scope
    return body


def _session_token_response(
    issuance: Issuance, request: GrantRequest, issued: IssuedSession, *, scope: str, audience: str
) -> dict[str, Any]:
    """The token response of a person's session: its access token and the new refresh token."""
    return _token_response(
        issuance,
        request,
        subject=str(issued.account_id),
        scope=scope,
        roles=issued.roles,
        session_id=issued.session_id,
        audience=audience,
        refresh_token=issued.refresh_token,
        email_verified=issued.email_verified,
    )


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
    `sign_in.check_password`), then start a session of the client."""
    client = request.client
    scope = parse_scope(request.scope, _allowed_scopes(issuance, client))
    audience = _audience(issuance, request)
    keys_ready(issuance.keys)
    attempt = PasswordAttempt(
        username, password, request.client_address, "password_grant", client.id
    )
    try:
        account = await check_password(db, issuance.hasher, issuance.throttle, attempt)
    except ThrottledError as exc:
        raise throttled(exc.retry_after) from None
    except BadCredentialsError:
        raise OAuthError("invalid_grant", BAD_CREDENTIALS) from None
    except PasswordWorkBusyError as exc:
        # As for a missing signing key (`keys_ready`): "try again", no claim about the client.
        raise OAuthError(
            "invalid_request",
            "Too many sign-ins are being checked; try again shortly.",
            status=503,
            headers={"Retry-After": str(exc.retry_after_seconds)},
        ) from None

    now = utcnow()
    if issuance.hasher.needs_rehash(account.password_hash):
        account.password_hash = await issuance.hasher.hash(password)
        audit.record(db, Event.PASSWORD_REHASHED, now=now, account_id=account.id)
    issued = await sign_in_sessions.start_session(
        db, account, client_id=client.id, scope=scope, policy=issuance.sessions, now=now
    )
    audit.record(
        db,
        Event.LOGIN_SUCCEEDED,
        now=now,
        account_id=account.id,
        client_address=request.client_address,
        client_id=client.id,
        session_id=str(issued.session_id),
    )
    await db.commit()
    return _session_token_response(issuance, request, issued, scope=scope, audience=audience)


async def refresh_grant(
    db: AsyncSession, issuance: Issuance, request: GrantRequest, *, refresh_token: str
) -> dict[str, Any]:
    """Spend a refresh token of the client's session for a new access token and its
    successor (RFC 6749 §6). Sessions stored without a client id (started before clients
    were registered) continue under the default client.

    A narrower scope may be asked for; it applies to this access token only, the session
    keeps the scope it was granted (less any its client may no longer have).
    """
    client = request.client
    allowed = _allowed_scopes(issuance, client)
    if request.scope is not None:
        parse_scope(request.scope, allowed)  # refused before the token is spent
    audience = _audience(issuance, request)
    keys_ready(issuance.keys)
    try:
        issued = await sign_in_sessions.rotate_refresh_token(
            db,
            refresh_token,
            client_id=client.id,
            policy=issuance.sessions,
            now=utcnow(),
            client_address=request.client_address,
            or_unnamed=client.id == issuance.clients.default_client_id,
        )
    except RefreshTokenRejectedError:
        # A reused token, or one of a disabled account, revoked its session: keep that.
        await db.commit()
        raise OAuthError("invalid_grant", BAD_REFRESH_TOKEN) from None
    await db.commit()
    granted = set(issued.scope.split()) & allowed
    scope = parse_scope(request.scope, granted)
    return _session_token_response(issuance, request, issued, scope=scope, audience=audience)


async def authorization_code_grant(
    db: AsyncSession,
    issuance: Issuance,
    request: GrantRequest,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
) -> dict[str, Any]:
    """Exchange a code from the sign-in page (RFC 6749 §4.1.3, RFC 7636 §4.6): spent once,
    by the client it was issued to, with its redirect URI and PKCE verifier; a replay
    revokes the session the first exchange started. Starts a session of the client (its
    refresh token rotates as any other) and, with scope `openid`, adds an ID token."""
    audience = _audience(issuance, request)
    keys_ready(issuance.keys)
    now = utcnow()
    try:
        grant = await authorization_codes.redeem_code(
            db,
            code,
            client_id=request.client.id,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            now=now,
            client_address=request.client_address,
        )
    except CodeRejectedError:
        await db.commit()  # the code is spent, and a replay's revocation kept
        raise OAuthError("invalid_grant", BAD_CODE) from None
    account = await db.get(Account, grant.account_id)
    # The scopes granted then, less any the client or the service no longer has.
    scope = " ".join(sorted(set(grant.scope.split()) & _allowed_scopes(issuance, request.client)))
    if account is None or account.disabled:
        await db.commit()
        raise OAuthError("invalid_grant", BAD_CODE)
    issued = await sign_in_sessions.start_session(
        db, account, client_id=request.client.id, scope=scope, policy=issuance.sessions, now=now
    )
    await authorization_codes.record_issued_session(db, code, issued.session_id)
    await db.commit()
    body = _session_token_response(issuance, request, issued, scope=scope, audience=audience)
    if "openid" in scope.split():
        body["id_token"] = issue_id_token(
            issuance.keys,
            issuance.issuer,
            account=account,
            client_id=request.client.id,
            scope=scope,
            nonce=grant.nonce,
            auth_time=grant.auth_time,
            access_token=body["access_token"],
            session_id=issued.session_id,
            now=utcnow(),
            ttl=_lifetime(issuance, request.client),
        )
    return body


def client_credentials_grant(issuance: Issuance, request: GrantRequest) -> dict[str, Any]:
    """A service's own token (RFC 6749 §4.4): `sub` and `client_id` its client id, no
    session and no refresh token, no roles; scopes among its client's (all by default)."""
    scope = parse_scope(request.scope, _allowed_scopes(issuance, request.client))
    audience = _audience(issuance, request)
    keys_ready(issuance.keys)
    return _token_response(
        issuance,
        request,
        subject=request.client.id,
        scope=scope,
        roles=[],
        session_id=None,
        audience=audience,
        refresh_token=None,
    )


REVOKE_PATH = "/auth/revoke"
TOKEN_TYPE_HINTS = ("refresh_token", "access_token")


async def revoke(
    db: AsyncSession,
    issuance: Issuance,
    form: dict[str, str],
    credentials: PresentedCredentials,
    client_address: str | None,
) -> None:
    """RFC 7009: the client (authenticated as at the token endpoint) revokes the session of
    one of its refresh tokens. An unknown token, an access token or another client's session
    changes nothing, and is no error either (§2.2)."""
    token = require(form, "token")
    now = utcnow()
    client = await client_auth.authenticate(
        db,
        issuance.clients,
        credentials,
        endpoint=f"{issuance.issuer.issuer}{REVOKE_PATH}",
        client_address=client_address,
        now=now,
    )
    # §2.1: an unknown hint may be ignored, as if none was sent; access tokens are not
    # revoked one by one (they expire).
    if form.get("token_type_hint") != "access_token":
        await sign_in_sessions.revoke_by_refresh_token(
            db,
            token,
            client_id=client.id,
            now=now,
            client_address=client_address,
            or_unnamed=client.id == issuance.clients.default_client_id,
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
