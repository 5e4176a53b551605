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
    assert document["grant_types_supported"] == ["password", "refresh_token"]
    assert document["token_endpoint_auth_methods_supported"] == ["none"]


async def test_swagger_authorize_points_at_the_token_endpoint(shared_client: AsyncClient) -> None:
    schema = (await shared_client.get("/auth/openapi.json")).json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "token"
    form = schema["paths"]["/auth/token"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form
