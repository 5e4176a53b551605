"""The client registry: the default client, secrets and their rotation, deletion."""

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import clients, registration, sign_in_sessions
from auth_service.clients import (
    ClientExistsError,
    ClientNotFoundError,
    ClientOperationError,
    ClientSecretHasher,
)
from auth_service.clock import utcnow
from auth_service.models import Account, AuditEvent, Client, ClientSecret, SignInSession
from auth_service.registration import ClientRegistration
from service_kit.db import Database
from testsupport.auth_service import (
    STRONG_PASSWORD,
    create_schema_async,
    register,
    running_app,
    settings_for,
)

pytestmark = pytest.mark.anyio

HASHER = ClientSecretHasher("test-kek")
SCOPES = frozenset({"openid", "email", "profile", "users:read"})


def _registration(
    client_id: str = "reports", client_type: str = "confidential", **fields: Any
) -> ClientRegistration:
    fields.setdefault("grant_types", None)
    fields.setdefault("scopes", None)
    return registration.registration(
        client_id,
        client_type,
        existing_scopes=SCOPES,
        default_scopes=frozenset({"profile"}),
        max_access_token_ttl_seconds=900,
        **fields,
    )


async def _events(db: AsyncSession, event: str) -> list[AuditEvent]:
    return list(await db.scalars(select(AuditEvent).where(AuditEvent.event == event)))


async def test_replicas_racing_create_the_default_client_once(database_url: str) -> None:
    # Four replicas starting together, each with its own engine and connections.
    replicas = [Database(database_url) for _ in range(4)]
    try:

        async def start(replica: Database) -> None:
            async with replica.db_session() as db:
                await clients.ensure_default_client(db, "public", {"profile"}, utcnow())

        await asyncio.gather(*(start(replica) for replica in replicas))
        await asyncio.gather(*(start(replica) for replica in replicas))  # restarts
        async with replicas[0].db_session() as db:
            rows = list(await db.scalars(select(Client)))
            assert [(row.id, row.type, row.grant_types, row.scopes) for row in rows] == [
                ("public", "public", "password refresh_token", "profile")
            ]
            assert len(await _events(db, "client_created")) == 1
            assert await _events(db, "client_updated") == []
    finally:
        for replica in replicas:
            await replica.dispose()


async def test_the_default_client_follows_its_scopes_setting(db: AsyncSession) -> None:
    await clients.ensure_default_client(db, "public", {"profile"}, utcnow())
    await clients.ensure_default_client(db, "public", {"profile", "users:read"}, utcnow())
    await clients.ensure_default_client(db, "public", {"profile", "users:read"}, utcnow())
    row = await db.get(Client, "public", populate_existing=True)
    assert row is not None
    assert row.scopes == "profile users:read"
    (updated,) = await _events(db, "client_updated")
    assert updated.details == {
        "actor": "settings",
        "grant_types": "password refresh_token",
        "scopes": "profile users:read",
    }


async def test_a_confidential_client_named_like_the_default_is_left_alone(
    db: AsyncSession,
) -> None:
    await clients.create(db, _registration("public"), HASHER, actor="cli:ops", now=utcnow())
    await clients.ensure_default_client(db, "public", {"profile"}, utcnow())
    row = await db.get(Client, "public", populate_existing=True)
    assert row is not None
    assert (row.type, row.grant_types) == ("confidential", "client_credentials")


async def test_a_secret_is_url_safe_shown_once_and_stored_as_a_keyed_hash(
    db: AsyncSession,
) -> None:
    created = await clients.create(
        db, _registration(scopes=["users:read"]), HASHER, actor="cli:ops", now=utcnow()
    )
    assert created.secret is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", created.secret)  # 256 bits
    (stored,) = await db.scalars(select(ClientSecret))
    assert stored.secret_hash == HASHER.hash(created.secret)
    assert created.secret.encode() not in stored.secret_hash
    # Keyed: another key-encryption key gives another hash, so a stolen table tests nothing.
    assert ClientSecretHasher("another-kek").hash(created.secret) != stored.secret_hash
    (event,) = await _events(db, "client_created")
    assert event.client_id == "reports"
    assert event.details["actor"] == "cli:ops"
    assert created.secret not in str(event.details)


async def test_an_id_is_registered_once(db: AsyncSession) -> None:
    await clients.create(db, _registration(), HASHER, actor="cli", now=utcnow())
    with pytest.raises(ClientExistsError):
        await clients.create(db, _registration(), HASHER, actor="cli", now=utcnow())


async def test_public_and_key_set_clients_have_no_secret_to_rotate(db: AsyncSession) -> None:
    public = await clients.create(
        db, _registration("app", "public"), HASHER, actor="cli", now=utcnow()
    )
    assert public.secret is None
    keyed = await clients.create(
        db,
        _registration(
            "keyed",
            jwks={"keys": [{"kty": "EC", "crv": "P-256", "x": _P256_X, "y": _P256_Y}]},
        ),
        HASHER,
        actor="cli",
        now=utcnow(),
    )
    assert keyed.secret is None
    assert await db.scalar(select(func.count()).select_from(ClientSecret)) == 0
    for client_id in ("app", "keyed"):
        with pytest.raises(ClientOperationError):
            await clients.rotate_secret(
                db, client_id, HASHER, timedelta(hours=1), actor="cli", now=utcnow()
            )
    with pytest.raises(ClientNotFoundError):
        await clients.rotate_secret(
            db, "nobody", HASHER, timedelta(hours=1), actor="cli", now=utcnow()
        )


# A P-256 public key (RFC 7515 A.3's).
_P256_X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
_P256_Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"


async def _live_hashes(db: AsyncSession, at: timedelta) -> list[bytes]:
    loaded = await clients.load(db, "reports", utcnow() + at)
    assert loaded is not None
    return loaded[1]


async def test_after_a_rotation_the_old_secret_works_until_the_grace_ends(
    db: AsyncSession,
) -> None:
    now = utcnow()
    first = await clients.create(db, _registration(), HASHER, actor="cli", now=now)
    assert first.secret is not None
    grace = timedelta(hours=1)
    rotation = await clients.rotate_secret(db, "reports", HASHER, grace, actor="cli:ops", now=now)
    assert rotation.previous_expires_at == now + grace
    for secret in (first.secret, rotation.secret):
        assert HASHER.matches(secret, await _live_hashes(db, timedelta(minutes=59)))
    after_grace = await _live_hashes(db, timedelta(minutes=61))
    assert not HASHER.matches(first.secret, after_grace)
    assert HASHER.matches(rotation.secret, after_grace)
    (event,) = await _events(db, "client_secret_rotated")
    assert event.details["actor"] == "cli:ops"
    assert rotation.secret not in str(event.details)


async def test_at_most_two_secrets_live_at_a_time(db: AsyncSession) -> None:
    now = utcnow()
    first = await clients.create(db, _registration(), HASHER, actor="cli", now=now)
    grace = timedelta(hours=1)
    second = await clients.rotate_secret(db, "reports", HASHER, grace, actor="cli", now=now)
    third = await clients.rotate_secret(db, "reports", HASHER, grace, actor="cli", now=now)
    live = await _live_hashes(db, timedelta(0))
    assert len(live) == 2
    assert first.secret is not None
    assert not HASHER.matches(first.secret, live)  # the rotation before last ended its grace
    assert HASHER.matches(second.secret, live)
    assert HASHER.matches(third.secret, live)
    assert await db.scalar(select(func.count()).select_from(ClientSecret)) == 2


async def test_a_rotation_without_grace_ends_the_old_secret_at_once(db: AsyncSession) -> None:
    now = utcnow()
    first = await clients.create(db, _registration(), HASHER, actor="cli", now=now)
    assert first.secret is not None
    await clients.rotate_secret(db, "reports", HASHER, timedelta(0), actor="cli", now=now)
    assert not HASHER.matches(first.secret, await _live_hashes(db, timedelta(0)))


async def test_deleting_a_client_revokes_its_sessions_and_not_others(db: AsyncSession) -> None:
    now = utcnow()
    await clients.create(db, _registration("app", "public"), HASHER, actor="cli", now=now)
    account = Account(
        id=uuid.uuid4(),
        email="del@example.com",
        email_key="del@example.com",
        password_hash="$2b$04$" + "x" * 53,
        roles=[],
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    db.add(account)
    policy = sign_in_sessions.SessionPolicy(timedelta(days=1), timedelta(days=2))
    for client_id in ("app", "app", "public"):
        await sign_in_sessions.start_session(
            db, account, client_id=client_id, scope="profile", policy=policy, now=now
        )
    await db.commit()
    revoked = await clients.delete_client(
        db, "app", default_client_id="public", actor="cli:ops", now=now
    )
    assert revoked == 2
    assert await db.get(Client, "app", populate_existing=True) is None
    reasons = dict(
        (await db.execute(select(SignInSession.client_id, SignInSession.revoked_reason))).all()
    )
    assert reasons == {"app": "client_deleted", "public": None}
    (event,) = await _events(db, "client_deleted")
    assert event.details == {"actor": "cli:ops", "sessions_revoked": 2}
    with pytest.raises(ClientNotFoundError):
        await clients.delete_client(db, "app", default_client_id="public", actor="cli", now=now)


async def test_the_default_client_cannot_be_deleted(db: AsyncSession) -> None:
    await clients.ensure_default_client(db, "public", {"profile"}, utcnow())
    with pytest.raises(ClientOperationError, match="DEFAULT_CLIENT_ID"):
        await clients.delete_client(
            db, "public", default_client_id="public", actor="cli", now=utcnow()
        )


async def test_a_description_shows_secret_times_never_a_secret(db: AsyncSession) -> None:
    now = utcnow()
    created = await clients.create(
        db,
        _registration(scopes=["users:read"], audiences=["https://users.example"]),
        HASHER,
        actor="cli",
        now=now,
    )
    described = await clients.find(db, "reports", now)
    assert described["client_id"] == "reports"
    assert described["type"] == "confidential"
    assert described["grant_types"] == ["client_credentials"]
    assert described["scopes"] == ["users:read"]
    assert described["audiences"] == ["https://users.example"]
    assert described["token_endpoint_auth_method"] == "client_secret_basic"
    assert described["secrets"] == [{"created_at": now.isoformat(), "expires_at": None}]
    assert created.secret is not None
    assert created.secret not in str(described)
    assert [client["client_id"] for client in await clients.list_all(db, now)] == ["reports"]
    with pytest.raises(ClientNotFoundError):
        await clients.find(db, "nobody", now)


def test_the_test_settings_know_the_scopes_clients_are_registered_with() -> None:
    # The settings every test app runs with: users:read exists, the default client lacks it.
    settings = settings_for("sqlite+aiosqlite:///:memory:")
    assert settings.scope_set == SCOPES
    assert settings.default_client_scope_set == {"profile"}


async def test_a_service_started_before_its_schema_creates_the_default_client_later(
    new_database: Callable[[], str],
) -> None:
    url = new_database()  # no tables yet: the service starts all the same
    async with running_app(settings_for(url)) as client:
        await create_schema_async(url)
        await register(client, "late@example.com")
        async with asyncio.timeout(20):
            while True:
                response = await client.post(
                    "/auth/token",
                    data={
                        "grant_type": "password",
                        "username": "late@example.com",
                        "password": STRONG_PASSWORD,
                    },
                )
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.2)
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == "public"
