"""The token and revocation endpoints over HTTP: RFC 6749 and RFC 7009 answers to bad
requests, never a 500."""

import jwt
import pytest
from httpx import AsyncClient

from testsupport.auth_service import STRONG_PASSWORD, register

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (b"grant_type=password&username=a&password=b&username=c", None, "invalid_request"),
        (b'{"grant_type": "password"}', "application/json", "invalid_request"),
        (b"grant_type=password&username=%ff&password=x", None, "invalid_request"),
        (b"grant_type=password&username=\xff&password=x", None, "invalid_request"),
        (b"grant_type=password&username=a%00b&password=x", None, "invalid_request"),
        (b"username=a&password=b", None, "invalid_request"),
        (b"grant_type=password&password=b", None, "invalid_request"),
        # The default client is public, registered for password and refresh_token only.
        (b"grant_type=client_credentials", None, "unauthorized_client"),
        (b"grant_type=authorization_code&code=x", None, "invalid_request"),
        (b"grant_type=device_code&code=x", None, "unsupported_grant_type"),
        (b"grant_type=refresh_token&refresh_token=not-one-of-ours", None, "invalid_grant"),
        (b"grant_type=refresh_token&refresh_token=" + b"A" * 43, None, "invalid_grant"),
        (b"grant_type=password&username=a&password=b&scope=admin", None, "invalid_scope"),
        (
            b"grant_type=password&username=a&password=b&client_id=" + b"x" * 65,
            None,
            "invalid_request",
        ),
        (b"grant_type=password&username=" + b"a" * 5000 + b"&password=b", None, "invalid_request"),
        (b"%%%", None, "invalid_request"),
    ],
)
async def test_bad_token_requests_get_rfc_6749_errors_never_a_500(
    shared_client: AsyncClient, body: bytes, content_type: str | None, error: str
) -> None:
    headers = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    response = await shared_client.post("/auth/token", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == error
    assert set(response.json()) == {"error", "error_description"}


async def test_an_oversized_token_request_is_a_413_in_rfc_6749_form(
    shared_client: AsyncClient,
) -> None:
    response = await shared_client.post(
        "/auth/token",
        content=b"grant_type=password&username=a&password=" + b"x" * 100_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


async def test_swagger_basic_auth_with_an_empty_secret_names_the_public_client(
    client: AsyncClient,
) -> None:
    await register(client, "gus@example.com")
    form = {"grant_type": "password", "username": "gus@example.com", "password": STRONG_PASSWORD}
    # Swagger UI's Authorize: Basic with the default client's id (or none) and no secret.
    for basic in (("public", ""), ("", "")):
        response = await client.post("/auth/token", data=form, auth=basic)
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == "public"
    # A public client has no secret: one sent is a failed client authentication.
    with_secret = await client.post("/auth/token", data=form, auth=("public", "s3cret"))
    assert with_secret.status_code == 401
    assert with_secret.json()["error"] == "invalid_client"
    assert with_secret.headers["www-authenticate"].startswith("Basic realm=")


@pytest.mark.parametrize(
    "body", [b"", b"token_type_hint=refresh_token", b"token=a&token=b", b"token=%ff"]
)
async def test_bad_revocation_requests_are_invalid_request(
    shared_client: AsyncClient, body: bytes
) -> None:
    response = await shared_client.post(
        "/auth/revoke", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_the_document_lists_the_oauth_answers_as_they_are_sent(
    shared_client: AsyncClient,
) -> None:
    paths = (await shared_client.get("/auth/openapi.json")).json()["paths"]
    token = paths["/auth/token"]["post"]["responses"]
    # RFC 6749 bodies, and in front of the endpoint the gateway's own answers.
    assert set(token["400"]["content"]) == {"application/json"}
    assert set(token["413"]["content"]) == {"application/json", "application/problem+json"}
    assert set(token["429"]["content"]) == {"application/json", "text/plain"}
    assert token["429"]["headers"]["Retry-After"]["required"] is True
    # The Basic challenge comes when the client used HTTP Basic.
    assert token["401"]["headers"]["WWW-Authenticate"]["required"] is False
    revoke = paths["/auth/revoke"]["post"]["responses"]
    assert "content" not in revoke["200"]  # no body is sent
    revoked = await shared_client.post("/auth/revoke", data={"token": "nothing-of-ours"})
    assert (revoked.status_code, revoked.content) == (200, b"")
    assert "content-type" not in revoked.headers
