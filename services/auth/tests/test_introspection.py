"""Token introspection (RFC 7662): who may ask, and what is active."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, BasicAuth
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, clients
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.introspection import IntrospectionCaches, Introspector
from auth_service.main import create_app
from service_kit.db import Database
from service_kit.notifications import NotificationListener
from testsupport.auth_service import add_client, password_login, register, settings_for
from testsupport.client_keys import assertion, assertion_form, rsa_jwk
from testsupport.databases import admin_execute

pytestmark = pytest.mark.anyio

INTROSPECT_ENDPOINT = "http://127.0.0.1:8000/auth/introspect"


@dataclass
class Running:
    http: AsyncClient
    issuance: Issuance
    database_url: str
    # The introspecting service's credentials.
    auth: BasicAuth
    app: FastAPI

    @property
    def caches(self) -> IntrospectionCaches:
        introspector: Introspector = self.app.state.introspector
        return introspector.caches


@asynccontextmanager
async def _running(database_url: str, **settings: Any) -> AsyncIterator[Running]:
    """The app (with `settings` overridden) and a confidential client, `gateway`."""
    app = create_app(settings_for(database_url, **settings))
    transport = ASGITransport(app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://auth.test") as http,
    ):
        secret = await add_client(database_url, "gateway", "confidential")
        assert secret is not None
        yield Running(http, app.state.issuance, database_url, BasicAuth("gateway", secret), app)


@pytest.fixture
async def running(database_url: str) -> AsyncIterator[Running]:
    async with _running(database_url) as running:
        yield running


@asynccontextmanager
async def _db(running: Running) -> AsyncIterator[AsyncSession]:
    """A database session of the test's own, as an operator's command has."""
    database = Database(running.database_url)
    try:
        async with database.db_session() as db:
            yield db
    finally:
        await database.dispose()


async def _introspect(running: Running, token: str, **extra: Any) -> Any:
    auth = extra.pop("auth", running.auth)
    return await running.http.post(
        "/auth/introspect", data={"token": token, **extra.pop("form", {})}, auth=auth
    )


async def _active(running: Running, token: str) -> dict[str, Any]:
    response = await _introspect(running, token)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_a_live_persons_token_is_active_with_its_claims(running: Running) -> None:
    account = await register(running.http, "ann@example.com")
    tokens = await password_login(running.http, "ann@example.com")
    body = await _active(running, tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert body == {"active": True, **claims, "token_type": "Bearer"}
    assert body["sub"] == account["id"]
    assert body["client_id"] == "public"


async def test_a_token_of_a_revoked_session_is_inactive(running: Running) -> None:
    await register(running.http, "bea@example.com")
    tokens = await password_login(running.http, "bea@example.com")
    assert (await _active(running, tokens["access_token"]))["active"] is True
    revoked = await running.http.post("/auth/revoke", data={"token": tokens["refresh_token"]})
    assert revoked.status_code == 200
    assert await _active(running, tokens["access_token"]) == {"active": False}


async def test_a_disabled_accounts_token_is_inactive(running: Running) -> None:
    account = await register(running.http, "cy@example.com")
    tokens = await password_login(running.http, "cy@example.com")
    async with _db(running) as db:
        await administration.disable(db, uuid.UUID(account["id"]), actor="test", now=utcnow())
    assert await _active(running, tokens["access_token"]) == {"active": False}


async def test_expired_refresh_id_and_garbage_tokens_are_inactive(running: Running) -> None:
    await register(running.http, "dee@example.com")
    tokens = await password_login(running.http, "dee@example.com")
    issuance = running.issuance
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    key = issuance.keys.signing_key(utcnow())
    headers = {"kid": key.kid, "typ": "at+jwt"}
    now = int(utcnow().timestamp())
    # Expired 5 s ago: within a verifier's clock leeway, but introspection says inactive.
    expired = jwt.encode(
        {**claims, "iat": now - 905, "exp": now - 5}, key.private_key, "RS256", headers
    )
    # Our key and our claims, but not an access token.
    id_token = jwt.encode(claims, key.private_key, "RS256", {**headers, "typ": "JWT"})
    for token in (expired, tokens["refresh_token"], id_token, "garbage", "a.b.c", "x" * 4000):
        assert await _active(running, token) == {"active": False}, token[:20]


async def test_a_services_token_is_active_while_its_client_is_registered(
    running: Running,
) -> None:
    secret = await add_client(
        running.database_url,
        "reports",
        "confidential",
        scopes=["users:read"],
        audiences=["https://users.example"],
    )
    granted = await running.http.post(
        "/auth/token",
        data={"grant_type": "client_credentials"},
        auth=BasicAuth("reports", secret or ""),
    )
    token = granted.json()["access_token"]
    body = await _active(running, token)
    assert body["active"] is True
    assert (body["sub"], body["client_id"], body["scope"]) == ("reports", "reports", "users:read")
    assert body["aud"] == "https://users.example"  # any audience of ours is answered for
    async with _db(running) as db:
        await clients.delete_client(
            db, "reports", default_client_id="public", actor="test", now=utcnow()
        )
    assert await _active(running, token) == {"active": False}


async def test_only_authenticated_confidential_clients_may_introspect(running: Running) -> None:
    await register(running.http, "eve@example.com")
    token = (await password_login(running.http, "eve@example.com"))["access_token"]
    for auth, form in (
        (None, {}),
        (None, {"client_id": "public"}),
        (BasicAuth("public", ""), {}),
        (BasicAuth("gateway", "wrong"), {}),
        (None, {"client_id": "gateway"}),
    ):
        response = await _introspect(running, token, auth=auth, form=form)
        assert response.status_code == 401, (auth, form)
        assert response.json()["error"] == "invalid_client"
        assert ("www-authenticate" in response.headers) == (auth is not None)
        assert "sub" not in response.text


async def test_a_client_may_introspect_with_private_key_jwt_and_a_post_secret(
    running: Running,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await add_client(
        running.database_url, "keyed", "confidential", jwks={"keys": [rsa_jwk(key, "k1")]}
    )
    await register(running.http, "fin@example.com")
    token = (await password_login(running.http, "fin@example.com"))["access_token"]
    proof = assertion("keyed", key, INTROSPECT_ENDPOINT, kid="k1")
    response = await _introspect(running, token, auth=None, form=assertion_form(proof))
    assert response.json()["active"] is True
    secret = await add_client(running.database_url, "poster", "confidential")
    response = await _introspect(
        running, token, auth=None, form={"client_id": "poster", "client_secret": secret or ""}
    )
    assert response.json()["active"] is True


async def test_introspection_needs_a_token(running: Running) -> None:
    response = await running.http.post("/auth/introspect", data={}, auth=running.auth)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def _kept_person(running: Running, email: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A person signed in, whose token was introspected (and so kept); account, session,
    access token."""
    account = await register(running.http, email)
    token = (await password_login(running.http, email))["access_token"]
    assert (await _active(running, token))["active"] is True
    session_id = uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sid"])
    account_id = uuid.UUID(account["id"])
    assert running.caches.live_sessions.get(session_id) == account_id
    return account_id, session_id, token


async def test_a_kept_session_goes_at_once_when_this_process_revokes_it(
    running: Running,
) -> None:
    account_id, _, token = await _kept_person(running, "gus@example.com")
    # Disabled through this process's own database sessions, as the admin API does it.
    async with running.app.state.database.db_session() as db:
        await administration.disable(db, account_id, actor="test", now=utcnow())
    assert await _active(running, token) == {"active": False}


async def test_a_revocation_by_another_process_shows_within_the_bound(database_url: str) -> None:
    async with _running(database_url, introspection_cache_seconds=0.5) as running:
        account_id, _, token = await _kept_person(running, "hal@example.com")
        async with _db(running) as db:  # the operator's CLI: no notification on SQLite
            await administration.disable(db, account_id, actor="test", now=utcnow())
        await asyncio.sleep(0.6)
        assert await _active(running, token) == {"active": False}


PROPAGATION_BOUND_SECONDS = 1.0


@asynccontextmanager
async def _replicas(database_url: str, backend: str) -> AsyncIterator[tuple[Running, Running]]:
    """Two replicas on one PostgreSQL database, each keeping what it reads for a minute,
    both listening."""
    if backend != "postgresql":
        pytest.skip("replicas (and their notifications) need PostgreSQL")
    async with _running(database_url, introspection_cache_seconds=60) as one:
        app = create_app(settings_for(database_url, introspection_cache_seconds=60))
        transport = ASGITransport(app, client=("203.0.113.8", 50000))
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=transport, base_url="http://two.test") as http,
        ):
            two = Running(http, app.state.issuance, database_url, one.auth, app)
            for replica in (one, two):
                assert await _listener(replica).wait_live(5)
            yield one, two


def _listener(running: Running) -> NotificationListener:
    listener: NotificationListener = running.app.state.caches_listener
    return listener


async def _inactive_within(running: Running, token: str, seconds: float) -> None:
    started = time.monotonic()
    while (await _active(running, token))["active"]:
        assert time.monotonic() - started < seconds, f"still active after {seconds}s"
        await asyncio.sleep(0.01)


async def test_a_revocation_on_one_replica_reaches_the_other_by_notification(
    database_url: str, backend: str
) -> None:
    async with _replicas(database_url, backend) as (one, two):
        await register(one.http, "ida@example.com")
        tokens = await password_login(one.http, "ida@example.com")
        for replica in (one, two):
            assert (await _active(replica, tokens["access_token"]))["active"] is True
        revoked = await one.http.post("/auth/revoke", data={"token": tokens["refresh_token"]})
        assert revoked.status_code == 200
        assert await _active(one, tokens["access_token"]) == {"active": False}  # at once
        await _inactive_within(two, tokens["access_token"], PROPAGATION_BOUND_SECONDS)


async def test_a_replica_that_cannot_hear_reads_every_session(
    database_url: str, backend: str
) -> None:
    async with _replicas(database_url, backend) as (one, two):
        await register(one.http, "ivy@example.com")
        tokens = await password_login(one.http, "ivy@example.com")
        assert (await _active(two, tokens["access_token"]))["active"] is True  # kept on two
        listener = _listener(two)
        database = make_url(database_url).database
        admin_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - our names
            f"WHERE application_name = '{listener.name}' AND datname = '{database}'"
        )
        started = time.monotonic()
        while listener.live:
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.01)
        revoked = await one.http.post("/auth/revoke", data={"token": tokens["refresh_token"]})
        assert revoked.status_code == 200
        assert await _active(two, tokens["access_token"]) == {"active": False}


async def test_a_kept_token_is_inactive_from_its_expiry(database_url: str) -> None:
    async with _running(database_url, introspection_cache_seconds=60) as running:
        await register(running.http, "jo@example.com")
        tokens = await password_login(running.http, "jo@example.com")
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        key = running.issuance.keys.signing_key(utcnow())
        expires = int(time.time()) + 2
        token = jwt.encode(
            {**claims, "exp": expires}, key.private_key, "RS256", {"kid": key.kid, "typ": "at+jwt"}
        )
        assert (await _active(running, token))["active"] is True
        await asyncio.sleep(expires - time.time() + 0.05)
        assert await _active(running, token) == {"active": False}


async def test_a_deleted_caller_is_refused_at_once_here_and_within_the_bound_elsewhere(
    database_url: str,
) -> None:
    async with _running(database_url, verified_client_cache_seconds=0.5) as running:
        _, _, token = await _kept_person(running, "kim@example.com")
        assert len(running.issuance.clients.verified_clients) == 1
        async with _db(running) as db:  # the operator's CLI
            await clients.delete_client(
                db, "gateway", default_client_id="public", actor="test", now=utcnow()
            )
        await asyncio.sleep(0.6)
        assert (await _introspect(running, token)).status_code == 401
        secret = await add_client(database_url, "reader", "confidential")
        reader = BasicAuth("reader", secret or "")
        assert (await _introspect(running, token, auth=reader)).json()["active"] is True
        async with running.app.state.database.db_session() as db:  # this process
            await clients.delete_client(
                db, "reader", default_client_id="public", actor="test", now=utcnow()
            )
        assert (await _introspect(running, token, auth=reader)).status_code == 401


async def test_a_secret_ended_by_a_rotation_in_this_process_is_refused_at_once(
    database_url: str,
) -> None:
    async with _running(database_url, verified_client_cache_seconds=60) as running:
        _, _, token = await _kept_person(running, "lea@example.com")
        hasher = running.issuance.clients.hasher
        grace = timedelta(days=1)
        for _ in range(2):  # the second rotation ends the first secret's grace at once
            assert (await _introspect(running, token)).status_code == 200
            async with running.app.state.database.db_session() as db:
                rotation = await clients.rotate_secret(
                    db, "gateway", hasher, grace, actor="test", now=utcnow()
                )
        assert (await _introspect(running, token)).status_code == 401
        rotated = BasicAuth("gateway", rotation.secret)
        assert (await _introspect(running, token, auth=rotated)).json()["active"] is True
