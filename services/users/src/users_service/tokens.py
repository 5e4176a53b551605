"""Access tokens (RFC 9068) from the auth service, verified as RFC 8725 asks.

Only RS256, only with a key the auth service's JWKS holds under the token's `kid`; headers
that point at other keys (`jku`, `x5u`, `jwk`, `x5c`) or demand extensions (`crit`) are
refused, never followed. Every failure is the same `InvalidAccessTokenError` to the caller;
its message (which names the cause, never the token) is for the log.
"""

import math
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from users_service.jwks import MAX_KID_LENGTH, SIGNING_ALGORITHM

if TYPE_CHECKING:
    from users_service.token_cache import VerifiedTokenCache

# Three base64url segments, none empty: a stripped signature or a stray character stops here.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REFUSED_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64"})
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")


class InvalidAccessTokenError(Exception):
    """The token is not one this service accepts; the message is the cause, for logs only."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a verified access token says about its bearer."""

    subject: uuid.UUID
    roles: frozenset[str]
    scopes: frozenset[str]
    expires_at: int
    token_id: str
    key_id: str


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What an access token must match, from the settings."""

    issuer: str
    audience: str
    leeway_seconds: int
    max_bytes: int


class KeySource(Protocol):
    """Where verification gets keys: the JWKS client, or a test's stand-in set."""

    async def get_key(self, kid: str) -> RSAPublicKey | None: ...

    def has_key(self, kid: str) -> bool: ...


async def verify_access_token(token: str, keys: KeySource, policy: TokenPolicy) -> AccessToken:
    """Verify signature, header and claims; `InvalidAccessTokenError` on any failure."""
    if len(token) > policy.max_bytes:
        raise InvalidAccessTokenError("token too large")
    if not _COMPACT_JWS.fullmatch(token):
        raise InvalidAccessTokenError("not a compact JWS")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidAccessTokenError("unreadable header") from exc
    kid = _checked_key_id(header)
    key = await keys.get_key(kid)
    if key is None:
        raise InvalidAccessTokenError("unknown kid")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[SIGNING_ALGORITHM],
            audience=policy.audience,
            issuer=policy.issuer,
            leeway=policy.leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
        )
    except jwt.PyJWTError as exc:
        raise InvalidAccessTokenError(f"rejected by verification ({type(exc).__name__})") from exc
    return _access_token(claims, kid)


def _checked_key_id(header: dict[str, Any]) -> str:
    if header.get("alg") != SIGNING_ALGORITHM:
        raise InvalidAccessTokenError("algorithm not allowed")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidAccessTokenError("not an access token (typ)")
    refused = REFUSED_HEADERS.intersection(header)
    if refused:
        raise InvalidAccessTokenError(f"refused header parameter {sorted(refused)[0]}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        raise InvalidAccessTokenError("missing or malformed kid")
    return kid


def _access_token(claims: dict[str, Any], kid: str) -> AccessToken:
    # PyJWT checked presence and values; the types it is lenient about are checked here.
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_numeric_date(claims[name]):
            raise InvalidAccessTokenError(f"{name} is not a NumericDate")
    jti, sub, scope = claims["jti"], claims["sub"], claims.get("scope", "")
    roles = claims.get("roles", [])
    if not isinstance(jti, str) or not jti:
        raise InvalidAccessTokenError("jti is not a string")
    if not isinstance(scope, str):
        raise InvalidAccessTokenError("scope is not a string")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidAccessTokenError("roles is not a list of strings")
    try:
        subject = uuid.UUID(sub)
    except (TypeError, ValueError, AttributeError):
        raise InvalidAccessTokenError("sub is not a UUID") from None
    if str(subject) != sub.lower():  # the canonical form only, as the auth service writes it
        raise InvalidAccessTokenError("sub is not a UUID")
    return AccessToken(
        subject=subject,
        roles=frozenset(roles),
        scopes=frozenset(scope.split()),
        expires_at=int(claims["exp"]),
        token_id=jti,
        key_id=kid,
    )


def _is_numeric_date(value: object) -> bool:
    # RFC 7519 §2: a JSON number, fractions allowed; PyJWT would also take "123" or true.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class TokenVerifier:
    """Verification with the verified-token cache in front: what requests call."""

    def __init__(self, keys: KeySource, policy: TokenPolicy, cache: "VerifiedTokenCache") -> None:
        self._keys = keys
        self._policy = policy
        self._cache = cache

    async def verify(self, token: str) -> AccessToken:
        """The token's contents; `InvalidAccessTokenError` when it fails verification."""
        if len(token) > self._policy.max_bytes:
            raise InvalidAccessTokenError("token too large")
        cached = self._cache.get(token)
        # A cached success stands only while its key is still in the key set.
        if cached is not None and self._keys.has_key(cached.key_id):
            return cached
        access = await verify_access_token(token, self._keys, self._policy)
        self._cache.put(token, access)
        return access
