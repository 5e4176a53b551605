"""Access tokens (RFC 9068) from the auth service, verified as RFC 8725 asks.

Only RS256, only with a key the auth service's JWKS holds under the token's `kid`; headers
that point at other keys (`jku`, `x5u`, `jwk`, `x5c`) or demand extensions (`crit`) are
refused, never followed. The header's `typ` must be `at+jwt`, so an ID token (`typ` `JWT`),
signed by the same keys, is never taken for an access token. Every failure is the same
`InvalidAccessTokenError` to the caller; its message (which names the cause, never the token)
is for the log.
"""

import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from auth_client.deny_list import DenyList
from auth_client.jwks import MAX_KID_LENGTH, SIGNING_ALGORITHM
from auth_client.principal import Principal
from auth_client.token_cache import VerifiedTokenCache

# Three base64url segments, none empty: a stripped signature or a stray character stops here.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
REFUSED_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64"})
# RFC 9068 §2.2: every access token carries these.
REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
# Clock skew tolerated on exp, nbf and iat: RFC 8725 asks for little; more is refused.
MAX_LEEWAY_SECONDS = 60
DEFAULT_MAX_TOKEN_BYTES = 8192
DEFAULT_CACHE_SIZE = 10_000
MAX_IDENTIFIER_LENGTH = 255


class InvalidAccessTokenError(Exception):
    """The token is not one this service accepts; the message is the cause, for logs only."""


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """What an access token must match: its issuer (`iss`), our audience (`aud`), and limits."""

    issuer: str
    audience: str
    leeway_seconds: int = 10
    max_bytes: int = DEFAULT_MAX_TOKEN_BYTES

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("a token policy needs an issuer and an audience")
        if not 0 <= self.leeway_seconds <= MAX_LEEWAY_SECONDS:
            raise ValueError(f"leeway_seconds must be between 0 and {MAX_LEEWAY_SECONDS}")
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be positive")


class KeySource(Protocol):
    """Where verification gets keys: the JWKS client, or a test's stand-in set."""

    async def get_key(self, kid: str) -> RSAPublicKey | None: ...

    def has_key(self, kid: str) -> bool: ...


async def verify_access_token(token: str, keys: KeySource, policy: TokenPolicy) -> Principal:
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
    return _principal(claims, kid)


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


def _principal(claims: dict[str, Any], kid: str) -> Principal:
    # PyJWT checked presence and values; the types it is lenient about are checked here.
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_numeric_date(claims[name]):
            raise InvalidAccessTokenError(f"{name} is not a NumericDate")
    for name in ("sub", "client_id", "jti"):
        if not _is_identifier(claims[name]):
            raise InvalidAccessTokenError(f"{name} is not a non-empty string")
    sid, scope, roles = claims.get("sid"), claims.get("scope", ""), claims.get("roles", [])
    if sid is not None and not _is_identifier(sid):
        raise InvalidAccessTokenError("sid is not a non-empty string")
    if not isinstance(scope, str):
        raise InvalidAccessTokenError("scope is not a string")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidAccessTokenError("roles is not a list of strings")
    return Principal(
        subject=claims["sub"],
        client_id=claims["client_id"],
        scopes=frozenset(scope.split()),
        roles=frozenset(roles),
        session_id=sid,
        expires_at=int(claims["exp"]),
        issued_at=int(claims["iat"]),
        token_id=claims["jti"],
        key_id=kid,
        claims=MappingProxyType(claims),
    )


def _is_numeric_date(value: object) -> bool:
    # RFC 7519 §2: a JSON number, fractions allowed; PyJWT would also take "123" or true.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_identifier(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_IDENTIFIER_LENGTH


class TokenVerifier:
    """What requests call: the verified-token cache, verification, then the deny list."""

    def __init__(
        self,
        keys: KeySource,
        policy: TokenPolicy,
        *,
        cache: VerifiedTokenCache | None = None,
        deny_list: DenyList | None = None,
    ) -> None:
        self.keys = keys
        self.policy = policy
        self.cache = cache if cache is not None else VerifiedTokenCache(DEFAULT_CACHE_SIZE)
        self.deny_list = deny_list if deny_list is not None else DenyList()
        """Feed it (`deny_session`, `deny_subject`) to refuse revoked tokens before `exp`."""

    async def verify(self, token: str) -> Principal:
        """The token's principal; `InvalidAccessTokenError` when it fails verification."""
        if len(token) > self.policy.max_bytes:
            raise InvalidAccessTokenError("token too large")
        principal = self.cache.get(token)
        # A cached success stands only while its key is still in the key set.
        if principal is None or not self.keys.has_key(principal.key_id):
            principal = await verify_access_token(token, self.keys, self.policy)
            self.cache.put(token, principal)
        if self.deny_list.is_denied(principal):
            raise InvalidAccessTokenError("denied (session revoked or subject disabled)")
        return principal
