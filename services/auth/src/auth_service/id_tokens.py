"""ID tokens (OpenID Connect Core §2, §3.1.3.6) and the claims about a person that both
they and the userinfo endpoint carry (`identity_claims`).

Signed RS256 with the same keys as access tokens, but with header `typ` `JWT`: every
access-token check (ours, the users service's, auth_client's) requires `at+jwt`, so an
ID token is never accepted as an access token; and `id_token_hint_claims` requires `JWT`,
so an access token is never accepted as an ID token.
"""

import base64
import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from auth_service.jwk import ALGORITHM
from auth_service.key_store import SigningKeyStore
from auth_service.models import Account
from auth_service.tokens import MAX_TOKEN_BYTES, TokenIssuer

ID_TOKEN_TYPE = "JWT"  # noqa: S105 - the JWT typ
# The claims the userinfo endpoint and ID tokens may hold (discovery's claims_supported).
CLAIMS_SUPPORTED = (
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "email",
    "email_verified",
    "preferred_username",
)


class InvalidIdTokenError(Exception):
    """Not one of our ID tokens. Never says which check failed."""


def identity_claims(account: Account, scope: str) -> dict[str, Any]:
    """What the scopes let a client know about the person (OpenID Connect Core §5.4):
    `sub` always; `email` and `email_verified` with `email`; `preferred_username` with
    `profile` (when the account has a username)."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": str(account.id)}
    if "email" in scopes:
        claims["email"] = account.email
        claims["email_verified"] = account.email_verified
    if "profile" in scopes and account.username:
        claims["preferred_username"] = account.username
    return claims


def at_hash(access_token: str) -> str:
    """§3.1.3.6: the left half of the SHA-256 of the access token, base64url, unpadded."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def issue_id_token(
    keys: SigningKeyStore,
    issuer: TokenIssuer,
    *,
    account: Account,
    client_id: str,
    scope: str,
    nonce: str | None,
    auth_time: datetime,
    access_token: str,
    session_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> str:
    """An ID token for `client_id`, signed by the key active at `now`."""
    key = keys.signing_key(now)
    issued_at = int(now.timestamp())
    claims: dict[str, Any] = {
        **identity_claims(account, scope),
        "iss": issuer.issuer,
        "aud": client_id,
        "exp": issued_at + int(min(ttl, issuer.ttl).total_seconds()),
        "iat": issued_at,
        "auth_time": int(auth_time.timestamp()),
        "at_hash": at_hash(access_token),
        # The client's session: RP-Initiated Logout with this token as hint revokes it.
        "sid": str(session_id),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return jwt.encode(
        claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": ID_TOKEN_TYPE}
    )


def id_token_hint_claims(token: str, keys: SigningKeyStore, issuer: str) -> dict[str, Any]:
    """The claims of one of our ID tokens, as RP-Initiated Logout reads `id_token_hint`:
    signature, `typ` `JWT` (never an access token), issuer; an expired one is accepted
    (logging out after the token expired is the usual case), its audience read, not
    checked here (the caller matches it to the client)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidIdTokenError
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("typ") != ID_TOKEN_TYPE:
            raise InvalidIdTokenError
        kid = header.get("kid")
        public_key = keys.public_key(kid) if isinstance(kid, str) else None
        if public_key is None:
            raise InvalidIdTokenError
        claims: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "require": ["iss", "sub", "aud", "iat"],
                "verify_exp": False,
                "verify_aud": False,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
        raise InvalidIdTokenError from exc
    if not isinstance(claims["aud"], str) or not isinstance(claims["sub"], str):
        raise InvalidIdTokenError
    return claims
