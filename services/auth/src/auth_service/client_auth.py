"""Client authentication at the token, revocation and introspection endpoints: one module.

A request uses exactly one method (two at once is `invalid_request`):

- `client_secret_basic` (RFC 6749 §2.3.1): HTTP Basic, id and secret each form-encoded
  before the base64;
- `client_secret_post`: `client_id` and `client_secret` in the form;
- `private_key_jwt` (RFC 7523 §2.2, §3): a JWT signed with a key of the client's key set,
  RS256, ES256 or PS256 only, each pinned to its kind of key. `iss` and `sub` are the
  client id; `aud` the issuer, the token endpoint, or the endpoint being called; `exp`
  required and at most an hour ahead (Authlib's default lifetime); `jti` required and
  never accepted twice while the assertion lives (a unique key, so replicas agree);
- `none`, for public clients: the client id alone (or nothing: the default client).
  HTTP Basic with an empty secret names a public client too (Swagger UI sends that).

A failure is `invalid_client`, 401, with `WWW-Authenticate: Basic` when Basic was used. A
request that presents a credential is throttled as a sign-in is (`throttling`), per client
id and address and per address, decided before the credential is checked; a failure counts
and is audited.

A secret that checked is remembered by its process for `VERIFIED_CLIENT_CACHE_SECONDS`
(`ClientAuthenticator.verified_clients`: the client id, the secret's keyed digest, the
client), so that a service calling many times a second costs one read per interval, not
one per call. The same secret is then accepted without a read, and so without the
throttle's: a guess never matches a kept digest, so it is always read, throttled, counted;
and any failure for a client (or a throttled request) makes its process forget that client,
so the next success is read, and throttled, again. An entry never outlives the earliest
expiry of the client's live secrets (a rotated-out secret's grace), and a rotation or a
deletion makes every replica forget the client (`replica_cache.announce`). Private-key
assertions and public clients are never kept here (an assertion's `jti` must be recorded
each time; public clients have `PublicClientCache`).
"""

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import jwt
from sqlalchemy import RowMapping, Select, bindparam, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, clients, throttling
from auth_service.audit import Event
from auth_service.clients import ClientSecretHasher, RegisteredClient
from auth_service.models import Client, ClientSecret, UsedClientAssertion
from auth_service.oauth import OAuthError, invalid_request
from auth_service.registration import ASSERTION_ALGORITHMS
from auth_service.replica_cache import ReplicaCache
from auth_service.throttling import ClientKeys, ThrottlePolicy
from auth_service.tokens import LEEWAY_SECONDS
from service_kit.db import dialect_insert

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME_SECONDS = 3600
MAX_JTI_CHARS = 255
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
CONFIDENTIAL_AUTH_METHODS = AUTH_METHODS[:3]
SECRET_METHODS = AUTH_METHODS[:2]
BASIC_CHALLENGE = 'Basic realm="auth", charset="UTF-8"'
# RFC 6749 Appendix A.1: client_id is VSCHAR*; registered ids are 1-64 of a narrower set.
_CLIENT_ID = re.compile(r"[\x20-\x7e]{1,64}")
_FAILED = "Client authentication failed."


@dataclass(frozen=True)
class PresentedCredentials:
    """What a request says about its client, before anything is checked."""

    client_id: str | None
    method: str
    secret: str | None = None
    assertion: str | None = None
    via_basic: bool = False


def invalid_client(description: str, *, basic: bool) -> OAuthError:
    headers = {"WWW-Authenticate": BASIC_CHALLENGE} if basic else None
    return OAuthError("invalid_client", description, status=401, headers=headers)


def presented(authorization: str | None, form: dict[str, str]) -> PresentedCredentials:
    """The credentials in a request's `Authorization` header and form, parsed, not checked."""
    methods: list[str] = []
    basic_id = basic_secret = None
    if authorization:
        basic_id, basic_secret = _basic(authorization)
        if basic_secret:
            methods.append("client_secret_basic")
    if "client_secret" in form:
        methods.append("client_secret_post")
    assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
    if assertion_type is not None or assertion is not None:
        if assertion_type is None or assertion is None:
            # Half an assertion is no client authentication (RFC 7521 §4.2 needs both).
            raise invalid_client(
                "client_assertion and client_assertion_type go together.", basic=False
            )
        if assertion_type != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}.", basic=False)
        methods.append("private_key_jwt")
    if len(methods) > 1:
        raise invalid_request(f"Use one client authentication method, not {' and '.join(methods)}.")

    client_id = form.get("client_id")
    if basic_id:
        if client_id is not None and client_id != basic_id:
            raise invalid_request("Two different client ids were sent.")
        client_id = basic_id
    if client_id is not None and not _CLIENT_ID.fullmatch(client_id):
        raise invalid_request("The client_id must be 1-64 printable ASCII characters.")
    method = methods[0] if methods else "none"
    if method == "client_secret_basic" and client_id is None:
        raise invalid_client("The Authorization header names no client.", basic=True)
    if method == "client_secret_post" and client_id is None:
        raise invalid_client("A client_secret names no client (client_id).", basic=False)
    return PresentedCredentials(
        client_id=client_id,
        method=method,
        secret=basic_secret or form.get("client_secret"),
        assertion=assertion,
        via_basic=bool(authorization),
    )


def _basic(authorization: str) -> tuple[str, str]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client("Clients authenticate with HTTP Basic here.", basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("The Authorization header is malformed.", basic=True) from None
    user, separator, password = decoded.partition(":")
    if not separator:
        raise invalid_client("The Authorization header is malformed.", basic=True)
    # RFC 6749 §2.3.1: both parts are form-encoded before the Basic encoding.
    return unquote_plus(user), unquote_plus(password)


class PublicClientCache:
    """Public clients as last read, for `max_age_seconds` (0: not kept), per process.

    A public client proves nothing, so reading it is all its authentication costs: a
    statement per refresh grant, the hottest path that names one. A change to one (its
    grants, its scopes, its deletion) takes effect on every replica within `max_age_seconds`.
    Confidential clients are never kept: a rotated secret's end and a deletion take effect at
    once for them.
    """

    def __init__(self, max_age_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._clients: dict[str, tuple[float, RegisteredClient]] = {}

    def get(self, client_id: str) -> RegisteredClient | None:
        entry = self._clients.get(client_id)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, client: RegisteredClient) -> None:
        if self.max_age_seconds and not client.confidential:
            if len(self._clients) >= _MAX_CACHED_CLIENTS:
                self._clients.clear()
            self._clients[client.id] = (self._clock() + self.max_age_seconds, client)


_MAX_CACHED_CLIENTS = 1000

# Client id -> (the keyed digest of the secret that checked, the client).
VerifiedClientCache = ReplicaCache[str, tuple[bytes, RegisteredClient]]


def verified_client_cache(
    max_age_seconds: float, active: Callable[[], bool] = lambda: True
) -> VerifiedClientCache:
    """A process's cache of confidential clients whose secret checked (0: none kept)."""
    return ReplicaCache(
        max_age_seconds, max_entries=_MAX_CACHED_CLIENTS, parse_key=str, active=active
    )


@dataclass(frozen=True)
class ClientAuthenticator:
    """What checking a client needs besides the database; one per application."""

    hasher: ClientSecretHasher
    throttle: ThrottlePolicy
    issuer: str
    default_client_id: str
    default_client_scopes: frozenset[str] = frozenset()
    public_clients: PublicClientCache = field(default_factory=lambda: PublicClientCache(0))
    verified_clients: VerifiedClientCache = field(default_factory=lambda: verified_client_cache(0))


class _RefusedError(Exception):
    """A presented credential does not hold; `reason` is for the audit trail."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def lookup_statement(*alongside: Any) -> Select[Any]:
    """The one read of a confidential client's authentication: the throttle's wait, the
    client and its live secrets' hashes (one row per live secret, or one row of NULLs but
    the wait when there is no such client), and the labelled scalar expressions
    `alongside`, which an endpoint reads in the same statement (a round trip saved on
    the hot path). Built once, at import; bound parameters `client_id`, `pair`,
    `address`, `now`, and those of `alongside`."""
    return (
        select(
            throttling.CLIENT_BLOCKED_UNTIL.label("blocked_until"),
            *Client.__table__.columns,
            ClientSecret.secret_hash,
            ClientSecret.expires_at.label("secret_expires_at"),
            *alongside,
        )
        .select_from(select(literal(1).label("one")).subquery())
        .outerjoin(Client, Client.id == bindparam("client_id"))
        .outerjoin(
            ClientSecret,
            (ClientSecret.client_id == Client.id)
            & or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > bindparam("now")),
        )
    )


_LOOKUP = lookup_statement()


async def authenticate(
    db: AsyncSession,
    authenticator: ClientAuthenticator,
    credentials: PresentedCredentials,
    *,
    endpoint: str,
    client_address: str | None,
    now: datetime,
) -> RegisteredClient:
    """The registered client a request comes from, authenticated; or `OAuthError`.

    `endpoint` is the absolute URL being called (an assertion's `aud` may name it).
    A failed credential commits its count and audit event before raising; an accepted
    assertion commits its `jti`; a secret or a public client commits nothing.
    """
    if credentials.method == "none":
        return await _public_client(db, authenticator, credentials, now)
    verified = verified_client(authenticator, credentials)
    if verified is not None:
        return verified
    client, _ = await authenticate_confidential(
        db, authenticator, credentials, endpoint=endpoint, client_address=client_address, now=now
    )
    return client


def verified_client(
    authenticator: ClientAuthenticator, credentials: PresentedCredentials
) -> RegisteredClient | None:
    """The client, when its process checked this very secret of it a moment ago (see the
    module); None otherwise, and for any other method: then read (`authenticate`)."""
    if credentials.method not in SECRET_METHODS or credentials.client_id is None:
        return None
    entry = authenticator.verified_clients.get(credentials.client_id)
    if entry is None:
        return None
    digest, client = entry
    if not hmac.compare_digest(digest, authenticator.hasher.hash(credentials.secret or "")):
        return None
    return client


async def authenticate_confidential(
    db: AsyncSession,
    authenticator: ClientAuthenticator,
    credentials: PresentedCredentials,
    *,
    endpoint: str,
    client_address: str | None,
    now: datetime,
    lookup: Select[Any] = _LOOKUP,
    parameters: Mapping[str, Any] | None = None,
    read_only: bool = False,
) -> tuple[RegisteredClient, RowMapping]:
    """`authenticate` for a client that must prove itself (any credential-less request is
    `invalid_client`); also the row its read gave (`lookup_statement`'s `alongside`).

    `read_only`: the caller writes nothing after it (introspection), so on PostgreSQL the
    read runs outside a transaction: no BEGIN and ROLLBACK round trips. (What this function
    writes itself still lands: an assertion's `jti` at once, a failure's count and audit
    event in a transaction of their own, after the read's connection is given back.)"""
    if credentials.method == "none":
        raise invalid_client(
            "Only an authenticated confidential client may call this.",
            basic=credentials.via_basic,
        )
    client_id = credentials.client_id or _assertion_subject(credentials.assertion)
    keys = ClientKeys.of(client_id, client_address)
    bound = {
        **(parameters or {}),
        "client_id": client_id,
        "pair": keys.pair,
        "address": keys.address,
        "now": now,
    }
    if read_only and not db.in_transaction() and db.get_bind().dialect.name == "postgresql":
        await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    kept = authenticator.verified_clients
    generation = kept.generation  # before the read: a change meanwhile makes it stale
    rows = (await db.execute(lookup, bound)).mappings().all()
    first = rows[0]
    if first["blocked_until"] is not None:
        kept.forget(client_id)
        wait = throttling.seconds_until(first["blocked_until"], now)
        await db.rollback()
        raise OAuthError(
            "invalid_client",
            f"Too many failed client authentications; try again in {wait} seconds.",
            status=429,
            headers={"Retry-After": str(wait)},
        )
    try:
        if first["id"] is None:
            raise _RefusedError("unknown_client")
        client = RegisteredClient.of(first)
        if not client.confidential:
            raise _RefusedError("public_client_with_credentials")
        if credentials.method == "private_key_jwt":
            assert credentials.assertion is not None
            await _accept_assertion(db, credentials.assertion, client, authenticator, endpoint, now)
        elif client.jwks is not None:
            raise _RefusedError("secret_for_key_client")
        else:
            presented = authenticator.hasher.hash(credentials.secret or "")
            hashes = [row["secret_hash"] for row in rows if row["secret_hash"] is not None]
            if not ClientSecretHasher.digest_matches(presented, hashes):
                raise _RefusedError("wrong_secret")
            kept.put(client_id, (presented, client), generation, within=_secrets_hold(rows, now))
    except _RefusedError as refused:
        kept.forget(client_id)
        await db.rollback()
        await throttling.count_client_failure(db, keys, authenticator.throttle, now)
        audit.record(
            db,
            Event.CLIENT_AUTHENTICATION_FAILED,
            now=now,
            client_id=client_id,
            client_address=client_address,
            method=credentials.method,
            reason=refused.reason,
        )
        await db.commit()
        raise invalid_client(_FAILED, basic=credentials.via_basic) from None
    return client, first


def _secrets_hold(rows: Sequence[RowMapping], now: datetime) -> float | None:
    """Seconds until the first of the client's live secrets expires (None: none will)."""
    ends = [row["secret_expires_at"] for row in rows if row["secret_expires_at"] is not None]
    return (min(ends) - now).total_seconds() if ends else None


async def _public_client(
    db: AsyncSession,
    authenticator: ClientAuthenticator,
    credentials: PresentedCredentials,
    now: datetime,
) -> RegisteredClient:
    basic = credentials.via_basic
    client_id = credentials.client_id or authenticator.default_client_id
    cached = authenticator.public_clients.get(client_id)
    if cached is not None:
        return cached
    loaded = await clients.load(db, client_id, now)
    if loaded is None and client_id == authenticator.default_client_id:
        # Created at start, unless the database was not there then: now, once.
        await clients.ensure_default_client(db, client_id, authenticator.default_client_scopes, now)
        loaded = await clients.load(db, client_id, now)
    if loaded is None:
        raise invalid_client("The client is not registered.", basic=basic)
    client = loaded[0]
    if client.confidential:
        raise invalid_client("This client must authenticate.", basic=basic)
    authenticator.public_clients.put(client)
    return client


def _assertion_subject(assertion: str | None) -> str:
    """The client an assertion names (unverified: to find its keys and its throttle)."""
    try:
        claims = jwt.decode(assertion or "", options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid_client(_FAILED, basic=False) from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _CLIENT_ID.fullmatch(subject):
        raise invalid_client(_FAILED, basic=False)
    return subject


def _candidate_keys(client: RegisteredClient, header: dict[str, Any]) -> list[jwt.PyJWK]:
    algorithm = header.get("alg")
    kind = ASSERTION_ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    if kind is None or "crit" in header:
        raise _RefusedError("algorithm_not_allowed")
    kid = header.get("kid")
    keys = []
    for key in (client.jwks or {}).get("keys", []):
        if key["kty"] != kind or key.get("alg", algorithm) != algorithm:
            continue
        if kid is not None and key.get("kid") != kid:
            continue
        try:
            keys.append(jwt.PyJWK(key, algorithm=algorithm))
        except jwt.PyJWTError:
            continue  # checked at registration; never fail a request on one stored key
    if not keys:
        raise _RefusedError("unknown_key")
    return keys


def _verified_claims(
    assertion: str, client: RegisteredClient, audiences: list[str], now: datetime
) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise _RefusedError("malformed_assertion") from None
    for key in _candidate_keys(client, header):
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key.key,
                algorithms=[header["alg"]],
                audience=audiences,
                issuer=client.id,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.InvalidSignatureError:
            continue  # another key of the set may have signed it
        except jwt.PyJWTError as exc:
            raise _RefusedError(f"invalid_assertion:{type(exc).__name__}") from None
        break
    else:
        raise _RefusedError("bad_signature")
    if claims["sub"] != client.id:
        raise _RefusedError("subject_not_client")
    if claims["exp"] > now.timestamp() + MAX_ASSERTION_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise _RefusedError("assertion_lives_too_long")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_CHARS:
        raise _RefusedError("bad_jti")
    return claims


async def _accept_assertion(
    db: AsyncSession,
    assertion: str,
    client: RegisteredClient,
    authenticator: ClientAuthenticator,
    endpoint: str,
    now: datetime,
) -> None:
    issuer = authenticator.issuer
    audiences = list(dict.fromkeys([issuer, f"{issuer}/auth/token", endpoint]))
    claims = _verified_claims(assertion, client, audiences, now)
    # Remembered until it has expired for good (leeway included): then it is refused anyway.
    expires_at = datetime.fromtimestamp(claims["exp"], UTC) + timedelta(seconds=LEEWAY_SECONDS)
    insert = dialect_insert(db.get_bind().dialect.name)(UsedClientAssertion)
    first_use = (
        await db.execute(
            insert.values(client_id=client.id, jti=claims["jti"], expires_at=expires_at)
            .on_conflict_do_nothing()
            .returning(UsedClientAssertion.jti)
        )
    ).first()
    if first_use is None:
        raise _RefusedError("replayed_assertion")
    # Committed now: a request that fails later must not make the assertion usable again.
    await db.commit()
