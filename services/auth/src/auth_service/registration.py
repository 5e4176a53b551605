"""What a client registration may hold: the rules `auth-service clients create` (and the
admin API to come) apply before anything is stored.

- a client id of 1-64 URL-safe characters (no ':', which HTTP Basic would split on);
- grant types this service knows; `client_credentials` for confidential clients only
  (RFC 6749 §4.4), `refresh_token` only beside a grant that starts a session,
  `authorization_code` only with a redirect URI;
- scopes among those that exist (SCOPES);
- redirect URIs absolute, without a fragment (RFC 6749 §3.1.2), https, or http to a
  loopback address only (RFC 8252 §7.3);
- a JWKS (for `private_key_jwt`) of public signature keys of the pinned kinds only: RSA of
  at least 2048 bits (RS256, PS256) or EC P-256 (ES256).
"""

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import InvalidKeyError

CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$"
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
CLIENT_TYPES = ("public", "confidential")
GRANT_TYPES = ("authorization_code", "client_credentials", "password", "refresh_token")
# Grants that start a session, which `refresh_token` then continues.
SESSION_GRANTS = frozenset({"authorization_code", "password"})
# Client assertions (RFC 7523) are checked with these algorithms only, each pinned to its
# kind of key.
ASSERTION_ALGORITHMS = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
MIN_RSA_BITS = 2048
MAX_JWKS_KEYS = 10
MAX_REDIRECT_URI_CHARS = 2000
MAX_AUDIENCE_CHARS = 255
_AUDIENCE = re.compile(r"[\x21-\x7e]{1,255}")
_PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "n", "e", "crv", "x", "y")
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_LOOPBACK_NAMES = frozenset({"localhost"})


class InvalidClientFieldError(ValueError):
    """A registration breaks a rule; `field` names the option, the message the rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ClientRegistration:
    """A client as it will be stored, every field checked (`registration()` builds one)."""

    client_id: str
    type: str
    grant_types: frozenset[str]
    scopes: frozenset[str]
    redirect_uris: tuple[str, ...]
    audiences: tuple[str, ...]
    jwks: dict[str, Any] | None
    access_token_ttl_seconds: int | None
    first_party: bool


def check_client_id(client_id: str) -> str:
    if not _CLIENT_ID.fullmatch(client_id):
        raise InvalidClientFieldError(
            "client_id",
            "A client id is 1-64 letters, digits, '.', '_', '~' or '-', "
            "starting with a letter or digit.",
        )
    return client_id


def registration(
    client_id: str,
    client_type: str,
    *,
    grant_types: Iterable[str] | None,
    scopes: Iterable[str] | None,
    redirect_uris: Iterable[str] = (),
    audiences: Iterable[str] = (),
    jwks: Any = None,
    access_token_ttl_seconds: int | None = None,
    first_party: bool = True,
    existing_scopes: frozenset[str],
    default_scopes: frozenset[str],
    max_access_token_ttl_seconds: int,
) -> ClientRegistration:
    """A checked registration, or `InvalidClientFieldError`.

    Omitted grant types: `client_credentials` for a confidential client, `password` and
    `refresh_token` for a public one (the grants it can use today). Omitted scopes: none
    for a confidential client, `default_scopes` (DEFAULT_CLIENT_SCOPES) for a public one.
    """
    check_client_id(client_id)
    if client_type not in CLIENT_TYPES:
        raise InvalidClientFieldError("type", "The type is `public` or `confidential`.")
    confidential = client_type == "confidential"
    if grant_types is None:
        grant_types = ["client_credentials"] if confidential else ["password", "refresh_token"]
    grants = _grant_types(list(grant_types), confidential)
    if scopes is None:
        scopes = [] if confidential else sorted(default_scopes)
    scope_set = frozenset(scopes)
    unknown = scope_set - existing_scopes
    if unknown:
        raise InvalidClientFieldError(
            "scopes", f"Unknown scope: {' '.join(sorted(unknown))} (SCOPES lists those that exist)."
        )
    if jwks is not None and not confidential:
        raise InvalidClientFieldError("jwks", "Only a confidential client authenticates with keys.")
    if access_token_ttl_seconds is not None and not (
        60 <= access_token_ttl_seconds <= max_access_token_ttl_seconds
    ):
        raise InvalidClientFieldError(
            "access_token_ttl",
            f"An access-token lifetime override is 60-{max_access_token_ttl_seconds} seconds: "
            "it may shorten ACCESS_TOKEN_TTL_SECONDS, never lengthen it (a retired signing key "
            "is published only that long after its last token).",
        )
    checked_redirect_uris = tuple(check_redirect_uri(uri) for uri in _unique(redirect_uris))
    if "authorization_code" in grants and not checked_redirect_uris:
        raise InvalidClientFieldError(
            "redirect_uris", "The authorization_code grant needs at least one redirect URI."
        )
    return ClientRegistration(
        client_id=client_id,
        type=client_type,
        grant_types=grants,
        scopes=scope_set,
        redirect_uris=checked_redirect_uris,
        audiences=tuple(_audience(audience) for audience in _unique(audiences)),
        jwks=None if jwks is None else check_jwks(jwks),
        access_token_ttl_seconds=access_token_ttl_seconds,
        first_party=first_party,
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _grant_types(grant_types: list[str], confidential: bool) -> frozenset[str]:
    grants = frozenset(grant_types)
    unknown = grants - set(GRANT_TYPES)
    if unknown:
        raise InvalidClientFieldError(
            "grant_types",
            f"Unknown grant type: {' '.join(sorted(unknown))} (known: {', '.join(GRANT_TYPES)}).",
        )
    if not grants:
        raise InvalidClientFieldError("grant_types", "A client needs at least one grant type.")
    if "client_credentials" in grants and not confidential:
        raise InvalidClientFieldError(
            "grant_types", "client_credentials is for confidential clients only (RFC 6749 §4.4)."
        )
    if "refresh_token" in grants and not grants & SESSION_GRANTS:
        raise InvalidClientFieldError(
            "grant_types",
            "refresh_token continues a session: it needs authorization_code or password too.",
        )
    return grants


def check_redirect_uri(uri: str) -> str:
    """An absolute https URI without a fragment, or http to a loopback address."""
    problem = _redirect_uri_problem(uri)
    if problem:
        raise InvalidClientFieldError("redirect_uris", f"{uri!r}: {problem}")
    return uri


def _redirect_uri_problem(uri: str) -> str | None:
    if len(uri) > MAX_REDIRECT_URI_CHARS or not uri.isprintable() or " " in uri:
        return f"a redirect URI is at most {MAX_REDIRECT_URI_CHARS} printable characters"
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "not a URI"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an absolute https URI (http for a loopback address only)"
    if "#" in uri:
        return "must not hold a fragment"
    if parts.username is not None or parts.password is not None:
        return "must not hold user information"
    if parts.scheme == "http" and not _loopback(host):
        return "http is allowed for a loopback address only (127.0.0.1, [::1], localhost)"
    return None


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _audience(audience: str) -> str:
    if not _AUDIENCE.fullmatch(audience):
        raise InvalidClientFieldError(
            "audiences",
            f"An audience is 1-{MAX_AUDIENCE_CHARS} printable characters without spaces.",
        )
    return audience


def check_jwks(document: Any) -> dict[str, Any]:
    """The key set, reduced to its public members, or `InvalidClientFieldError`."""
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_JWKS_KEYS:
        raise InvalidClientFieldError(
            "jwks", f'A JWKS is a JSON object {{"keys": [...]}} of 1-{MAX_JWKS_KEYS} keys.'
        )
    checked = [_public_signing_key(key, index) for index, key in enumerate(keys)]
    kids = [key["kid"] for key in checked if "kid" in key]
    if len(kids) != len(set(kids)):
        raise InvalidClientFieldError("jwks", "Two keys have the same kid.")
    return {"keys": checked}


def _public_signing_key(key: Any, index: int) -> dict[str, Any]:
    def refuse(reason: str) -> InvalidClientFieldError:
        return InvalidClientFieldError("jwks", f"Key {index}: {reason}.")

    if not isinstance(key, dict):
        raise refuse("not a JSON object")
    if _PRIVATE_MEMBERS & set(key):
        raise refuse("it holds private key material; register the public key only")
    kty, alg = key.get("kty"), key.get("alg")
    if kty not in ("RSA", "EC"):
        raise refuse("kty must be RSA or EC")
    if alg is not None and ASSERTION_ALGORITHMS.get(alg) != kty:
        allowed = [name for name, kind in ASSERTION_ALGORITHMS.items() if kind == kty]
        raise refuse(f"alg must be one of {', '.join(allowed)} for an {kty} key")
    if key.get("use", "sig") != "sig":
        raise refuse("use must be sig")
    kid = key.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 1 <= len(kid) <= 255):
        raise refuse("kid must be a string of 1-255 characters")
    if kty == "EC" and key.get("crv") != "P-256":
        raise refuse("an EC key must be on P-256 (ES256)")
    try:
        loader = RSAAlgorithm if kty == "RSA" else ECAlgorithm
        public = loader.from_jwk(json.dumps(key))
    except (InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise refuse(f"not a usable key ({type(exc).__name__})") from None
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise refuse(f"an RSA key must have at least {MIN_RSA_BITS} bits")
    elif not isinstance(public, ec.EllipticCurvePublicKey):
        raise refuse("not a public key")
    return {name: key[name] for name in _PUBLIC_MEMBERS if name in key}
