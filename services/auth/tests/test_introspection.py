"""Token introspection (RFC 7662): who may ask, and what is active."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from httpx import ASGITransport, AsyncClient, BasicAuth
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import administration, clients
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.main import create_app
from service_kit.db import Database
from testsupport.auth_service import add_client, password_login, register, settings_for
from testsupport.client_keys import assertion, assertion_form, rsa_jwk

pytestmark = pytest.mark.anyio

INTROSPECT_ENDPOINT = "http://127.0.0.1:8000/auth/introspect"


@dataclass
class Running:
    http: AsyncClient
    issuance: Issuance
    database_url: str
    # The introspecting service's credentials.
    auth: BasicAuth


@pytest.fixture
async def running(database_url: str) -> AsyncIterator[Running]:
    app = create_app(settings_for(database_url))
    transport = ASGITransport(app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://auth.test") as http,
    ):
        secret = await add_client(database_url, "gateway", "confidential")
        assert secret is not None
        yield Running(http, app.state.issuance, database_url, BasicAuth("gateway", secret))


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
