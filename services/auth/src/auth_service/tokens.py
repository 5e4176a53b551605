"""Access tokens: RFC 9068 JWTs signed RS256, issued and (for our own endpoints) verified."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from auth_service.jwk import ALGORITHM
from auth_service.key_store import SigningKeyStore

TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT typ
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]
# Tolerated clock skew when checking exp and iat (RFC 8725 asks for little).
LEEWAY_SECONDS = 10
# Ours are well under 2 KB; anything far larger is refused before parsing.
MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True)
class TokenIssuer:
    """What every access token says about who issued it and for whom."""

    issuer: str
    audience: str
    ttl: timedelta
    default_client_id: str


@dataclass(frozen=True)
class AccessTokenClaims:
    account_id: uuid.UUID
    session_id: uuid.UUID | None
    scope: str
    roles: list[str]
    jti: str


class InvalidAccessTokenError(Exception):
    """The token is not one of ours, or no longer valid. Never says which check failed."""


def issue_access_token(
    keys: SigningKeyStore,
    issuer: TokenIssuer,
    *,
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    client_id: str | None,
    scope: str,
    roles: list[str],
    now: datetime,
) -> str:
    """Sign an RFC 9068 access token with the key that is active at `now`."""
    key = keys.signing_key(now)
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        "iss": issuer.issuer,
        "sub": str(account_id),
        "aud": issuer.audience,
        "exp": issued_at + int(issuer.ttl.total_seconds()),
        "iat": issued_at,
        "jti": uuid.uuid4().hex,
        # RFC 9068 §2.2 requires client_id; public clients that named none get the default.
        "client_id": client_id or issuer.default_client_id,
        "scope": scope,
        "roles": sorted(roles),
        # The session (refresh token family) it belongs to, as OpenID Connect names it.
        "sid": str(session_id),
    }
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": TOKEN_TYPE}
    )


def verify_access_token(
    token: str, keys: SigningKeyStore, issuer: TokenIssuer
) -> AccessTokenClaims:
    """Check an access token as RFC 9068 §4 and RFC 8725 ask: pinned algorithm, known key,
    `typ`, issuer, audience, lifetime and every required claim."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidAccessTokenError
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE:
            raise InvalidAccessTokenError
        kid = header.get("kid")
        public_key = keys.public_key(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise InvalidAccessTokenError
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidAccessTokenError
        sid = claims.get("sid")
        return AccessTokenClaims(
            account_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(sid) if isinstance(sid, str) else None,
            scope=str(claims["scope"]),
            roles=roles,
            jti=str(claims["jti"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidAccessTokenError from exc
