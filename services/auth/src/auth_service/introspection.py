"""Token introspection (RFC 7662), for authenticated confidential clients only.

A live access token of ours is `{"active": true, ...its claims}`: its signature checks
against a published key, its `typ`, `iss` and `exp` hold (whatever its audience), and it
is still backed by something: a person's token by its session (neither revoked nor
expired) and an enabled account, a service's own token (`client_credentials`: `sub` is
its client id, no `sid`) by its client, still registered. Anything else, an expired or
revoked token, a refresh token, an ID token, garbage, is `{"active": false}` and nothing
more (RFC 7662 §2.2).

A resource server asks about the same token at each of its requests, so each process keeps,
for `INTROSPECTION_CACHE_SECONDS` (`IntrospectionCaches`), a token's verified claims and
whether its session is live, beside its caller's checked secret (`client_auth`). A call that
finds all three reads nothing. A revocation (every path goes through
`sign_in_sessions.publish_revoked`, as does the disabling or deletion of an account) empties
the session's entry in its own process when it commits, and in the others when the
notification arrives (`replica_cache`); on SQLite, a revocation made by another process (the
operator's CLI) shows within the interval. A session is never kept past its own expiry, nor
a token's claims past its `exp`. A service's own token is read each time (its client's
registration), as is anything that did not check.
"""

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, exists, select
from sqlalchemy.orm import aliased

from auth_service import client_auth
from auth_service.client_auth import PresentedCredentials, lookup_statement
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.models import Account, Client, SignInSession
from auth_service.oauth import require
from auth_service.replica_cache import ReplicaCache
from auth_service.tokens import InvalidAccessTokenError, access_token_claims
from service_kit.db import Database

INTROSPECT_PATH = "/auth/introspect"
INACTIVE: dict[str, Any] = {"active": False}
MAX_CACHED_SESSIONS = 10_000
MAX_CACHED_TOKENS = 10_000

# Until when the token's session is live (NULL: it is not), read in the same statement as
# the caller's authentication: one statement per introspection.
_SESSION_LIVE_UNTIL = (
    select(SignInSession.expires_at)
    .join(Account, Account.id == SignInSession.account_id)
    .where(
        SignInSession.id == bindparam("session_id"),
        SignInSession.account_id == bindparam("account_id"),
        SignInSession.revoked_at.is_(None),
        SignInSession.expires_at > bindparam("now"),
        Account.disabled.is_(False),
    )
    .scalar_subquery()
)
_SESSION_ALONE = select(_SESSION_LIVE_UNTIL)  # the caller was checked a moment ago
_subject_client = aliased(Client)  # not the caller's row, which the lookup joins
_CLIENT_REGISTERED = exists(
    select(_subject_client.id).where(_subject_client.id == bindparam("subject"))
)
_LOOKUPS = {
    "session": lookup_statement(_SESSION_LIVE_UNTIL.label("live_until")),
    "client": lookup_statement(_CLIENT_REGISTERED.label("live")),
    None: lookup_statement(),
}


@dataclass(frozen=True)
class IntrospectionCaches:
    """What a process keeps between introspections, each entry for at most
    `INTROSPECTION_CACHE_SECONDS` (see the module)."""

    # A session id -> its account, while the session is live.
    live_sessions: ReplicaCache[uuid.UUID, uuid.UUID]
    # The SHA-256 of a token -> its claims, verified.
    tokens: ReplicaCache[bytes, dict[str, Any]]


@dataclass(frozen=True)
class Introspector:
    """Everything introspection needs besides the request; one per application (a route's
    one dependency: each costs the hottest endpoint tens of microseconds)."""

    database: Database
    issuance: Issuance
    caches: IntrospectionCaches


def introspection_caches(
    max_age_seconds: float, sessions_active: Callable[[], bool] = lambda: True
) -> IntrospectionCaches:
    """A process's caches (0: nothing kept). `sessions_active`: whether revocations reach
    this process now (its listener is live); a token's claims need no such news."""
    return IntrospectionCaches(
        live_sessions=ReplicaCache(
            max_age_seconds,
            max_entries=MAX_CACHED_SESSIONS,
            parse_key=uuid.UUID,
            active=sessions_active,
        ),
        tokens=ReplicaCache(
            max_age_seconds, max_entries=MAX_CACHED_TOKENS, parse_key=bytes.fromhex
        ),
    )


def _verified_claims(
    token: str, issuance: Issuance, cache: ReplicaCache[bytes, dict[str, Any]], now: datetime
) -> dict[str, Any] | None:
    """The token's claims, when it is one of our access tokens and has not expired."""
    key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    claims = cache.get(key)
    if claims is None:
        generation = cache.generation
        try:
            claims = access_token_claims(
                token, issuance.keys, issuance.issuer.issuer, audience=None
            )
        except InvalidAccessTokenError:
            return None
        cache.put(key, claims, generation, within=claims["exp"] - now.timestamp())
    # The clock leeway is for verifiers that cannot ask; here, an expired token is inactive.
    if claims["exp"] <= now.timestamp():
        return None
    return claims


def _backing(claims: dict[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """What keeps a token live (its session, or its client) and the parameters to ask."""
    if claims is None:
        return None, {}
    session = claims.get("sid")
    if session is None:
        if claims["sub"] != claims["client_id"]:
            return None, {}  # neither a person's nor a service's own token
        return "client", {"subject": claims["sub"]}
    try:
        return "session", {
            "account_id": uuid.UUID(claims["sub"]),
            "session_id": uuid.UUID(session),
        }
    except ValueError:
        return None, {}


def _session_read(
    cache: ReplicaCache[uuid.UUID, uuid.UUID],
    parameters: Mapping[str, Any],
    live_until: datetime | None,
    generation: int,
    now: datetime,
) -> bool:
    """Whether the session read is live; if so, kept (never past its expiry)."""
    if live_until is None:
        return False
    within = (live_until - now).total_seconds()
    cache.put(parameters["session_id"], parameters["account_id"], generation, within=within)
    return True


def _read_live_until(
    connection: Connection, parameters: Mapping[str, Any], now: datetime
) -> datetime | None:
    live_until: datetime | None = connection.scalar(_SESSION_ALONE, {**parameters, "now": now})
    return live_until


async def _session_live(
    database: Database,
    cache: ReplicaCache[uuid.UUID, uuid.UUID],
    parameters: Mapping[str, Any],
    now: datetime,
) -> bool:
    """Whether the session is live: kept a moment ago, or read alone."""
    if cache.get(parameters["session_id"]) == parameters["account_id"]:
        return True
    generation = cache.generation  # before the read: a revocation meanwhile makes it stale
    live_until = await database.run(_read_live_until, parameters, now)
    return _session_read(cache, parameters, live_until, generation, now)


async def introspect(
    introspector: Introspector,
    form: dict[str, str],
    credentials: PresentedCredentials,
    client_address: str | None,
) -> dict[str, Any]:
    """The introspection endpoint: authenticate the caller, then describe `token`.

    The token is checked first (no database), so that the caller's authentication and
    whether the token is still backed are one read, or none (see the module): a database
    session is opened only when the caller must be read. Nothing is written but a failed
    authentication's count, or an accepted client assertion's `jti`.
    """
    database, issuance, caches = introspector.database, introspector.issuance, introspector.caches
    now = utcnow()
    token = require(form, "token")  # token_type_hint may be ignored (RFC 7662 §2.1)
    claims = _verified_claims(token, issuance, caches.tokens, now)
    backing, parameters = _backing(claims)
    caller = client_auth.verified_client(issuance.clients, credentials)
    if caller is not None and backing != "client":
        live = backing is not None and await _session_live(
            database, caches.live_sessions, parameters, now
        )
    else:
        generation = caches.live_sessions.generation
        async with database.db_session() as db:
            _, row = await client_auth.authenticate_confidential(
                db,
                issuance.clients,
                credentials,
                endpoint=f"{issuance.issuer.issuer}{INTROSPECT_PATH}",
                client_address=client_address,
                now=now,
                lookup=_LOOKUPS[backing],
                parameters=parameters,
                read_only=True,
            )
        if backing == "session":
            live_until = row["live_until"]
            live = _session_read(caches.live_sessions, parameters, live_until, generation, now)
        else:
            live = backing == "client" and bool(row["live"])
    if not live:
        return INACTIVE
    return {"active": True, **(claims or {}), "token_type": "Bearer"}
