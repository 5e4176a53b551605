"""The key set and the discovery documents over HTTP."""

import jwt
import pytest
from httpx import AsyncClient

from testsupport.auth_service import password_login, register

pytestmark = pytest.mark.anyio


async def test_jwks_is_cacheable_with_an_etag_and_verifies_our_tokens(client: AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=0"
    keys = response.json()["keys"]
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "kid", "use", "alg", "n", "e"}
    assert (keys[0]["kty"], keys[0]["use"], keys[0]["alg"]) == ("RSA", "sig", "RS256")

    again = await client.get(
        "/.well-known/jwks.json", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304

    await register(client, "quin@example.com")
    access_token = (await password_login(client, "quin@example.com"))["access_token"]
    key = jwt.PyJWKSet.from_dict(response.json())[jwt.get_unverified_header(access_token)["kid"]]
    claims = jwt.decode(
        access_token,
        key,
        algorithms=["RS256"],
        audience="auth-platform",
        issuer="http://127.0.0.1:8000",
    )
    assert claims["iss"] == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_discovery_urls_are_absolute_and_built_from_the_issuer(
    shared_client: AsyncClient, path: str
) -> None:
    document = (await shared_client.get(path)).json()
    issuer = document["issuer"]
    assert issuer == "http://127.0.0.1:8000"
    assert document["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert document["token_endpoint"] == f"{issuer}/auth/token"
    assert document["revocation_endpoint"] == f"{issuer}/auth/revoke"
    assert document["introspection_endpoint"] == f"{issuer}/auth/introspect"
    assert document["grant_types_supported"] == [
        "authorization_code",
        "password",
        "refresh_token",
        "client_credentials",
    ]
    assert document["authorization_endpoint"] == f"{issuer}/auth/authorize"
    assert document["userinfo_endpoint"] == f"{issuer}/auth/userinfo"
    assert document["end_session_endpoint"] == f"{issuer}/auth/logout"
    assert document["response_types_supported"] == ["code"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["subject_types_supported"] == ["public"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert {"sub", "email", "email_verified", "preferred_username"} <= set(
        document["claims_supported"]
    )
    methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    assert document["token_endpoint_auth_methods_supported"] == methods
    assert document["revocation_endpoint_auth_methods_supported"] == methods
    # Introspection is for authenticated confidential clients only.
    assert document["introspection_endpoint_auth_methods_supported"] == methods[:3]
    for endpoint in ("token", "revocation", "introspection"):
        algorithms = document[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert algorithms == ["RS256", "PS256", "ES256"]
    assert document["scopes_supported"] == ["email", "openid", "profile", "users:read"]


async def test_swagger_authorize_points_at_the_token_endpoint(shared_client: AsyncClient) -> None:
    schema = (await shared_client.get("/auth/openapi.json")).json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "token"
    form = schema["paths"]["/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form


async def test_the_openapi_document_lists_client_authentication_and_introspection(
    shared_client: AsyncClient,
) -> None:
    schema = (await shared_client.get("/auth/openapi.json")).json()
    for path in ("/auth/token", "/auth/revoke", "/auth/introspect"):
        operation = schema["paths"][path]["post"]
        form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
        fields = form["schema"]["properties"]
        assert {"client_id", "client_secret", "client_assertion", "client_assertion_type"} <= set(
            fields
        )
        refused = operation["responses"]["401"]
        assert "invalid_client" in refused["description"]
        assert refused["headers"]["WWW-Authenticate"]["required"] is False  # Basic only
        assert operation["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    token = schema["paths"]["/auth/token"]["post"]
    grant_types = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert grant_types["properties"]["grant_type"]["enum"] == [
        "authorization_code",
        "password",
        "refresh_token",
        "client_credentials",
    ]
    assert "resource" in grant_types["properties"]
    answer = token["responses"]["200"]["content"]["application/json"]["schema"]
    assert "refresh_token" not in answer["required"]  # client_credentials has none
    for code in ("invalid_target", "unauthorized_client"):
        assert code in token["responses"]["400"]["description"]
    introspection = schema["paths"]["/auth/introspect"]["post"]["responses"]["200"]
    assert introspection["content"]["application/json"]["schema"]["required"] == ["active"]
