"""The client registry: registered clients, their secrets, and the operations on them.

One implementation for the operator's CLI (`auth-service clients …`) and the admin API to
come. Each operation (`ensure_default_client`, `create`, `rotate_secret`, `delete`)
commits, with an audit event naming who acted (`actor`) in the same transaction; the
reads (`find`, `list_all`, `load`) never write.

Secrets are `secrets.token_urlsafe(32)`: 256 random bits in URL-safe characters only, as
some clients do not form-encode HTTP Basic credentials. They are shown once and stored as
HMAC-SHA256 under a key derived (HKDF-SHA256, a label of its own) from
KEY_ENCRYPTION_KEY: a few microseconds to check. A slow hash would add nothing, because
a guess at 256 random bits fails whatever the speed, and a stolen table of keyed hashes
cannot even be tested without the key-encryption key. The consequence: changing
KEY_ENCRYPTION_KEY invalidates every client secret (as it already makes the signing keys
unreadable); `rotate-secret` issues new ones.

Each replica keeps a client whose secret it checked a moment ago (`client_auth`): a rotation
and a deletion announce the client (`replica_cache.announce`) so that every replica forgets it.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Insert, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit
from auth_service.audit import Event
from auth_service.models import Client, ClientSecret
from auth_service.registration import ClientRegistration, is_client_id
from auth_service.replica_cache import CHANGED_CLIENTS, announce
from auth_service.sign_in_sessions import RevokedReason, revoke_client_sessions
from service_kit.db import dialect_insert

SECRET_BYTES = 32
_SECRET_KEY_INFO = b"auth-service client-secret hashing v1"
DEFAULT_CLIENT_GRANTS = "password refresh_token"


class ClientNotFoundError(LookupError):
    """No client has that id."""


class ClientExistsError(Exception):
    """A client with that id is already registered."""


class ClientOperationError(Exception):
    """The operation does not apply to this client; the message says why."""


@dataclass(frozen=True)
class RegisteredClient:
    """A registered client as the token, revocation and introspection endpoints see it."""

    id: str
    type: str
    grant_types: frozenset[str]
    scopes: frozenset[str]
    audiences: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    jwks: dict[str, Any] | None
    access_token_ttl_seconds: int | None
    first_party: bool

    @property
    def confidential(self) -> bool:
        return self.type == "confidential"

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> "RegisteredClient":
        return cls(
            id=row["id"],
            type=row["type"],
            grant_types=frozenset(row["grant_types"].split()),
            scopes=frozenset(row["scopes"].split()),
            audiences=tuple(row["audiences"]),
            redirect_uris=tuple(row["redirect_uris"]),
            jwks=row["jwks"],
            access_token_ttl_seconds=row["access_token_ttl_seconds"],
            first_party=row["first_party"],
        )


class ClientSecretHasher:
    """HMAC-SHA256 of client secrets, keyed by the key-encryption key (see the module)."""

    def __init__(self, key_encryption_key: str) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=_SECRET_KEY_INFO
        ).derive(key_encryption_key.encode("utf-8"))

    def hash(self, secret: str) -> bytes:
        return hmac.new(self._key, secret.encode("utf-8", "replace"), hashlib.sha256).digest()

    def matches(self, secret: str, stored: Iterable[bytes]) -> bool:
        """Whether `secret` is one of the stored ones, each compared in constant time."""
        return self.digest_matches(self.hash(secret), stored)

    @staticmethod
    def digest_matches(presented: bytes, stored: Iterable[bytes]) -> bool:
        """`matches`, for a secret already hashed (`hash`)."""
        found = False
        for candidate in stored:  # every one compared: the time says nothing about which
            found |= hmac.compare_digest(presented, candidate)
        return found


def new_secret() -> str:
    """A fresh client secret: 43 URL-safe characters."""
    return secrets.token_urlsafe(SECRET_BYTES)


def _joined(values: Iterable[str]) -> str:
    return " ".join(sorted(set(values)))


def _insert(db: AsyncSession) -> Any:
    return dialect_insert(db.get_bind().dialect.name)


async def ensure_default_client(
    db: AsyncSession, client_id: str, scopes: Iterable[str], now: datetime
) -> None:
    """Create the default public client, or bring its grants and scopes to the settings;
    one atomic statement, so replicas starting together write it once. Commits.

    A confidential client of that name is left alone (a request naming no client then
    has to authenticate as it).
    """
    values: dict[str, Any] = {
        "id": client_id,
        "type": "public",
        "grant_types": DEFAULT_CLIENT_GRANTS,
        "scopes": _joined(scopes),
        "audiences": [],
        "redirect_uris": [],
        "jwks": None,
        "access_token_ttl_seconds": None,
        "first_party": True,
        "created_at": now,
        "updated_at": now,
    }
    statement: Insert = _insert(db)(Client).values(**values)
    excluded = statement.excluded  # type: ignore[attr-defined]
    statement = statement.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=[Client.id],
        set_={
            "grant_types": excluded.grant_types,
            "scopes": excluded.scopes,
            "updated_at": excluded.updated_at,
        },
        where=(Client.type == "public")
        & or_(Client.grant_types != excluded.grant_types, Client.scopes != excluded.scopes),
    ).returning(Client.created_at)
    written = (await db.execute(statement)).first()
    if written is not None:
        event = Event.CLIENT_CREATED if written[0] == now else Event.CLIENT_UPDATED
        audit.record(
            db,
            event,
            now=now,
            client_id=client_id,
            actor="settings",
            grant_types=values["grant_types"],
            scopes=values["scopes"],
        )
    await db.commit()


@dataclass(frozen=True)
class CreatedClient:
    client: RegisteredClient
    # Shown once: a confidential client without a key set gets one.
    secret: str | None


async def create(
    db: AsyncSession,
    registration: ClientRegistration,
    hasher: ClientSecretHasher,
    *,
    actor: str,
    now: datetime,
) -> CreatedClient:
    """Register a client (and its first secret, for a confidential client without a key
    set); `ClientExistsError` when the id is taken. Commits."""
    row = Client(
        id=registration.client_id,
        type=registration.type,
        grant_types=_joined(registration.grant_types),
        scopes=_joined(registration.scopes),
        audiences=list(registration.audiences),
        redirect_uris=list(registration.redirect_uris),
        jwks=registration.jwks,
        access_token_ttl_seconds=registration.access_token_ttl_seconds,
        first_party=registration.first_party,
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise ClientExistsError(registration.client_id) from None
    secret = None
    if registration.type == "confidential" and registration.jwks is None:
        secret = new_secret()
        db.add(ClientSecret(client_id=row.id, secret_hash=hasher.hash(secret), created_at=now))
    audit.record(
        db,
        Event.CLIENT_CREATED,
        now=now,
        client_id=row.id,
        actor=actor,
        type=row.type,
        grant_types=row.grant_types,
        scopes=row.scopes,
        audiences=row.audiences,
        redirect_uris=row.redirect_uris,
        private_key_jwt=row.jwks is not None,
        first_party=row.first_party,
    )
    await db.commit()
    return CreatedClient(_registered(row), secret)


def _registered(row: Client) -> RegisteredClient:
    return RegisteredClient.of({column: getattr(row, column) for column in _COLUMNS})


_COLUMNS = [column.key for column in Client.__table__.columns]


@dataclass(frozen=True)
class SecretRotation:
    client: RegisteredClient
    secret: str
    # When the secret it replaces stops working.
    previous_expires_at: datetime | None


async def rotate_secret(
    db: AsyncSession,
    client_id: str,
    hasher: ClientSecretHasher,
    grace: timedelta,
    *,
    actor: str,
    now: datetime,
) -> SecretRotation:
    """Issue a new secret; the current one keeps working for `grace`, and an older one
    still in its grace stops now, so at most two are ever live. Commits."""
    row = await db.scalar(select(Client).where(Client.id == client_id).with_for_update())
    if row is None:
        raise ClientNotFoundError(client_id)
    if row.type != "confidential":
        raise ClientOperationError(f"{client_id} is a public client: it has no secret")
    if row.jwks is not None:
        raise ClientOperationError(
            f"{client_id} authenticates with private_key_jwt (its key set): it has no secret"
        )
    await db.execute(
        delete(ClientSecret)
        .where(ClientSecret.client_id == client_id, ClientSecret.expires_at.is_not(None))
        .execution_options(synchronize_session=False)
    )
    previous_expires_at = now + grace
    replaced = await db.execute(
        update(ClientSecret)
        .where(ClientSecret.client_id == client_id, ClientSecret.expires_at.is_(None))
        .values(expires_at=previous_expires_at)
        .execution_options(synchronize_session=False)
    )
    secret = new_secret()
    db.add(ClientSecret(client_id=client_id, secret_hash=hasher.hash(secret), created_at=now))
    row.updated_at = now
    had_one = bool(getattr(replaced, "rowcount", 0))
    audit.record(
        db,
        Event.CLIENT_SECRET_ROTATED,
        now=now,
        client_id=client_id,
        actor=actor,
        previous_expires_at=previous_expires_at.isoformat() if had_one else None,
    )
    # An older secret still in its grace stops now: no replica may go on accepting it.
    await announce(db, CHANGED_CLIENTS, [client_id])
    await db.commit()
    return SecretRotation(_registered(row), secret, previous_expires_at if had_one else None)


async def delete_client(
    db: AsyncSession, client_id: str, *, default_client_id: str, actor: str, now: datetime
) -> int:
    """Delete a client, its secrets, and revoke every session it started; how many
    sessions were revoked. The default client cannot be deleted (it is recreated at every
    start). Commits."""
    if client_id == default_client_id:
        raise ClientOperationError(
            f"{client_id} is the default client (DEFAULT_CLIENT_ID): it is recreated at every "
            "start; change its scopes with DEFAULT_CLIENT_SCOPES"
        )
    row = await db.get(Client, client_id, with_for_update=True)
    if row is None:
        raise ClientNotFoundError(client_id)
    sessions_revoked = await revoke_client_sessions(
        db, client_id, RevokedReason.CLIENT_DELETED, now
    )
    await db.delete(row)
    audit.record(
        db,
        Event.CLIENT_DELETED,
        now=now,
        client_id=client_id,
        actor=actor,
        sessions_revoked=sessions_revoked,
    )
    await announce(db, CHANGED_CLIENTS, [client_id])
    await db.commit()
    return sessions_revoked


async def find(db: AsyncSession, client_id: str, now: datetime) -> dict[str, Any]:
    """A client's description (`describe`), or `ClientNotFoundError`."""
    row = await db.get(Client, client_id)
    if row is None:
        raise ClientNotFoundError(client_id)
    return describe(row, await _live_secrets(db, [client_id], now))


async def list_all(db: AsyncSession, now: datetime) -> list[dict[str, Any]]:
    """Every client's description, by id."""
    rows = list(await db.scalars(select(Client).order_by(Client.id)))
    live = await _live_secrets(db, [row.id for row in rows], now)
    return [describe(row, live) for row in rows]


async def _live_secrets(
    db: AsyncSession, client_ids: Sequence[str], now: datetime
) -> list[ClientSecret]:
    if not client_ids:
        return []
    return list(
        await db.scalars(
            select(ClientSecret)
            .where(
                ClientSecret.client_id.in_(client_ids),
                or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > now),
            )
            .order_by(ClientSecret.created_at)
        )
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def describe(row: Client, live_secrets: Iterable[ClientSecret]) -> dict[str, Any]:
    """A client as JSON: everything but secrets, of which only the times are shown."""
    return {
        "client_id": row.id,
        "type": row.type,
        "grant_types": row.grant_types.split(),
        "scopes": row.scopes.split(),
        "audiences": row.audiences,
        "redirect_uris": row.redirect_uris,
        "token_endpoint_auth_method": _auth_method(row),
        "jwks": row.jwks,
        "access_token_ttl_seconds": row.access_token_ttl_seconds,
        "first_party": row.first_party,
        "secrets": [
            {"created_at": _iso(secret.created_at), "expires_at": _iso(secret.expires_at)}
            for secret in live_secrets
            if secret.client_id == row.id
        ],
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _auth_method(row: Client) -> str:
    if row.type == "public":
        return "none"
    return "private_key_jwt" if row.jwks is not None else "client_secret_basic"


_CLIENT_WITH_LIVE_SECRETS = (
    select(*Client.__table__.columns, ClientSecret.secret_hash)
    .outerjoin(
        ClientSecret,
        (ClientSecret.client_id == Client.id)
        & or_(ClientSecret.expires_at.is_(None), ClientSecret.expires_at > bindparam("now")),
    )
    .where(Client.id == bindparam("client_id"))
)


async def load(
    db: AsyncSession, client_id: str, now: datetime
) -> tuple[RegisteredClient, list[bytes]] | None:
    """A client and the hashes of its live secrets (one statement, built once), or None.
    An id no client could have (a NUL byte, which PostgreSQL refuses in text) reads nothing."""
    if not is_client_id(client_id):
        return None
    rows = (
        (await db.execute(_CLIENT_WITH_LIVE_SECRETS, {"client_id": client_id, "now": now}))
        .mappings()
        .all()
    )
    if not rows:
        return None
    hashes = [row["secret_hash"] for row in rows if row["secret_hash"] is not None]
    return RegisteredClient.of(rows[0]), hashes
