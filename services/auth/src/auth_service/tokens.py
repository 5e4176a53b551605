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
    """What every access token says about who issued it, for whom by default, and for how
    long at most."""

    issuer: str
    audience: str
    ttl: timedelta


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
    subject: str,
    client_id: str,
    scope: str,
    roles: list[str],
    session_id: uuid.UUID | None,
    now: datetime,
    audience: str | None = None,
    ttl: timedelta | None = None,
    email_verified: bool | None = None,
) -> str:
    """Sign an RFC 9068 access token with the key that is active at `now`.

    A person's token names its session (`sid`) and says whether the account's address is
    verified (`email_verified`); a service's own (`client_credentials`) has neither, and its
    `sub` is its client id. `audience` and `ttl` default to the issuer's; a
    longer `ttl` than the issuer's is cut to it (retired keys are published that long).
    """
    key = keys.signing_key(now)
    issued_at = int(now.timestamp())
    lifetime = min(ttl, issuer.ttl) if ttl is not None else issuer.ttl
    claims: dict[str, Any] = {
        "iss": issuer.issuer,
        "sub": subject,
        "aud": audience or issuer.audience,
        "exp": issued_at + int(lifetime.total_seconds()),
        "iat": issued_at,
        "jti": uuid.uuid4().hex,
        "client_id": client_id,
        "scope": scope,
        "roles": sorted(roles),
    }
    if session_id is not None:
        # The session (refresh token family) it belongs to, as OpenID Connect names it.
        claims["sid"] = str(session_id)
    if email_verified is not None:
        claims["email_verified"] = email_verified
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": TOKEN_TYPE}
    )


def access_token_claims(
    token: str,
    keys: SigningKeyStore,
    issuer: str,
    *,
    audience: str | None,
) -> dict[str, Any]:
    """The claims of one of our access tokens, checked as RFC 9068 §4 and RFC 8725 ask:
    pinned algorithm, a published key, `typ`, issuer, lifetime, every required claim, and
    the audience unless `audience` is None (introspection answers for every audience)."""
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
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS, "verify_aud": audience is not None},
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidAccessTokenError from exc
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidAccessTokenError
    if not all(isinstance(claims[name], str) for name in ("sub", "client_id", "scope", "jti")):
        raise InvalidAccessTokenError
    if "sid" in claims and not isinstance(claims["sid"], str):
        raise InvalidAccessTokenError
    return claims


def verify_access_token(
    token: str, keys: SigningKeyStore, issuer: TokenIssuer
) -> AccessTokenClaims:
    """A person's access token for auth's own endpoints: every check of
    `access_token_claims`, our audience, and an account id as the subject."""
    claims = access_token_claims(token, keys, issuer.issuer, audience=issuer.audience)
    try:
        sid = claims.get("sid")
        return AccessTokenClaims(
            account_id=uuid.UUID(claims["sub"]),
            session_id=uuid.UUID(sid) if isinstance(sid, str) else None,
            scope=claims["scope"],
            roles=claims.get("roles", []),
            jti=claims["jti"],
        )
    except ValueError as exc:
        raise InvalidAccessTokenError from exc
