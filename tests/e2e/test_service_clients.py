"""Services as clients, through the gateway, with a client no one here wrote: Authlib's
`OAuth2Client` gets `client_credentials` tokens with `client_secret_basic` and with
`private_key_jwt`, and the users service serves them; a confidential client introspects a
live and a revoked token. Each client is registered with the real `auth-service clients
create`, against the stack's auth database, as an operator would.
"""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from testsupport.accounts import register_and_log_in, unverified_part
from testsupport.stack import Stack


def create_client(stack: Stack, client_id: str, *options: str) -> dict[str, Any]:
    """`auth-service clients create CLIENT_ID ...` against the stack; what it printed."""
    created = stack.cli("auth", "clients", "create", client_id, *options)
    assert created.returncode == 0, created.stderr
    printed: dict[str, Any] = json.loads(created.stdout)
    assert printed["client_id"] == client_id
    return printed


@pytest.fixture
def discovery(gateway: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = gateway.get("/.well-known/openid-configuration").json()
    return document


@pytest.fixture
def secret_client(stack: Stack) -> tuple[str, str]:
    """A confidential client with a secret, registered to read users."""
    stack.require_local()
    client_id = f"reports-{uuid.uuid4().hex[:8]}"
    printed = create_client(
        stack,
        client_id,
        "--type",
        "confidential",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "users:read",
    )
    return client_id, printed["client_secret"]


@pytest.fixture
def authlib_client(secret_client: tuple[str, str], stack: Stack) -> Iterator[OAuth2Client]:
    client_id, secret = secret_client
    with OAuth2Client(client_id, secret, scope="users:read", base_url=stack.url) as client:
        yield client


def test_discovery_offers_client_credentials_and_the_client_authentication_methods(
    discovery: dict[str, Any], stack: Stack
) -> None:
    assert "client_credentials" in discovery["grant_types_supported"]
    assert discovery["introspection_endpoint"] == f"{stack.url}/auth/introspect"
    assert set(discovery["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }


def test_authlib_with_client_secret_basic_gets_a_token_and_lists_users(
    authlib_client: OAuth2Client,
    secret_client: tuple[str, str],
    discovery: dict[str, Any],
    gateway: httpx.Client,
) -> None:
    person = register_and_log_in(gateway)
    assert gateway.get("/users/me", headers=person.headers).status_code == 200  # a profile

    token = authlib_client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token
    claims = unverified_part(token["access_token"], 1)
    assert claims["sub"] == claims["client_id"] == secret_client[0]
    assert claims["scope"] == "users:read"

    page = authlib_client.get("/users", params={"limit": 100})
    assert page.status_code == 200, page.text
    assert person.id in [profile["id"] for profile in page.json()["items"]]
    assert authlib_client.get(f"/users/{person.id}").status_code == 200
    # A service's own token is no person: it has no profile of its own.
    assert authlib_client.get("/users/me").status_code == 403


def test_authlib_with_a_wrong_secret_is_refused(
    secret_client: tuple[str, str], discovery: dict[str, Any], stack: Stack
) -> None:
    with OAuth2Client(secret_client[0], "not-the-secret", base_url=stack.url) as client:
        response = client.post(
            discovery["token_endpoint"],
            data={"grant_type": "client_credentials"},
            auth=(secret_client[0], "not-the-secret"),
        )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_authlib_with_private_key_jwt_gets_a_token_and_lists_users(
    stack: Stack, discovery: dict[str, Any], gateway: httpx.Client, tmp_path: Path
) -> None:
    stack.require_local()
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_file = tmp_path / "jwks.json"
    public_jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
    jwks_file.write_text(json.dumps({"keys": [{**public_jwk, "alg": "RS256", "use": "sig"}]}))
    client_id = f"billing-{uuid.uuid4().hex[:8]}"
    printed = create_client(
        stack,
        client_id,
        "--type",
        "confidential",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "users:read",
        "--jwks-file",
        str(jwks_file),
    )
    assert "client_secret" not in printed
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    token_endpoint = discovery["token_endpoint"]
    with OAuth2Client(
        client_id,
        pem,
        scope="users:read",
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint),
        base_url=stack.url,
    ) as client:
        # Authlib's assertions live an hour (its default), each with a fresh jti.
        for _ in range(2):
            token = client.fetch_token(token_endpoint, grant_type="client_credentials")
            assert unverified_part(token["access_token"], 1)["sub"] == client_id
        page = client.get("/users")
        assert page.status_code == 200, page.text
        assert isinstance(page.json()["items"], list)


def _introspect(gateway: httpx.Client, introspector: tuple[str, str], token: str) -> Any:
    response = gateway.post("/auth/introspect", data={"token": token}, auth=introspector)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


def test_introspection_of_a_live_and_a_revoked_token(
    gateway: httpx.Client, secret_client: tuple[str, str]
) -> None:
    person = register_and_log_in(gateway)
    live = _introspect(gateway, secret_client, person.access_token)
    assert live["active"] is True
    assert (live["sub"], live["client_id"], live["token_type"]) == (
        person.id,
        "public",
        "Bearer",
    )
    revoked = gateway.post("/auth/revoke", data={"token": person.refresh_token})
    assert revoked.status_code == 200
    assert _introspect(gateway, secret_client, person.access_token) == {"active": False}
    assert _introspect(gateway, secret_client, person.refresh_token) == {"active": False}
    # Only an authenticated confidential client may ask.
    anonymous = gateway.post("/auth/introspect", data={"token": person.access_token})
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
