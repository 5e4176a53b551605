"""The token and revocation endpoints over HTTP: RFC 6749 and RFC 7009 answers."""

import asyncio

import jwt
import pytest
from helpers import STRONG_PASSWORD, password_login, register
from httpx import AsyncClient

pytestmark = pytest.mark.anyio


async def test_password_grant_by_email_and_by_username(client: AsyncClient) -> None:
    account = await register(client, "Ada@Example.com", username="ada")
    for login in ("ada@example.com", "ADA@EXAMPLE.COM", "ada", "Ada"):
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": login, "password": STRONG_PASSWORD},
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 900
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == account["id"]


async def test_refresh_rotates_and_reuse_revokes_the_family(client: AsyncClient) -> None:
    await register(client, "bob@example.com")
    first = await password_login(client, "bob@example.com")
    refreshed = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first["refresh_token"]

    reused = await client.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # The whole family is gone, the legitimate successor included.
    successor = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert successor.json()["error"] == "invalid_grant"


async def test_eight_concurrent_refreshes_of_one_token_give_exactly_one_200(
    client: AsyncClient,
) -> None:
    await register(client, "carol@example.com")
    tokens = await password_login(client, "carol@example.com")
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    responses = await asyncio.gather(*(client.post("/auth/token", data=data) for _ in range(8)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 7
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)


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
        (b"grant_type=client_credentials", None, "unsupported_grant_type"),
        (b"grant_type=authorization_code&code=x", None, "unsupported_grant_type"),
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


async def test_wrong_password_and_unknown_account_answer_the_same(client: AsyncClient) -> None:
    await register(client, "dave@example.com")
    answers = []
    for username in ("dave@example.com", "nobody@example.com", "nobody"):
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "wrong password"},
        )
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] == answers[2]
    assert answers[0] == (
        400,
        {"error": "invalid_grant", "error_description": answers[0][1]["error_description"]},
    )


async def test_repeated_failures_are_throttled_with_retry_after(client: AsyncClient) -> None:
    await register(client, "erin@example.com")
    statuses = []
    for _ in range(8):
        response = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "erin@example.com",
                "password": "nope nope",
            },
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"] == "invalid_grant"
    assert 429 in statuses
    assert statuses[:5] == [400] * 5


async def test_a_refresh_from_another_client_fails_and_the_session_survives(
    client: AsyncClient,
) -> None:
    await register(client, "fay@example.com")
    tokens = await password_login(client, "fay@example.com", client_id="web-app")
    stranger = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "other-app",
        },
    )
    assert stranger.json()["error"] == "invalid_grant"
    anonymous = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert anonymous.json()["error"] == "invalid_grant"
    own = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "web-app",
        },
    )
    assert own.status_code == 200
    claims = jwt.decode(own.json()["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == "web-app"


async def test_swagger_basic_auth_with_an_empty_secret_names_the_client(
    client: AsyncClient,
) -> None:
    await register(client, "gus@example.com")
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "gus@example.com", "password": STRONG_PASSWORD},
        auth=("swagger-ui", ""),
    )
    assert response.status_code == 200
    with_secret = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "gus@example.com", "password": STRONG_PASSWORD},
        auth=("swagger-ui", "s3cret"),
    )
    assert with_secret.status_code == 401
    assert with_secret.json()["error"] == "invalid_client"


async def test_a_narrower_scope_on_refresh_applies_to_that_access_token(
    client: AsyncClient,
) -> None:
    await register(client, "hal@example.com")
    tokens = await password_login(client, "hal@example.com", scope="profile")
    assert tokens["scope"] == "profile"
    wider = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "profile admin",
        },
    )
    assert wider.json()["error"] == "invalid_scope"


async def test_revoke_ends_the_whole_session_and_always_answers_200(client: AsyncClient) -> None:
    await register(client, "ivy@example.com")
    tokens = await password_login(client, "ivy@example.com")
    rotated = (
        await client.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
    ).json()
    # Revoking the spent ancestor still revokes the session it belongs to.
    for token in (tokens["refresh_token"], "unknown-token", rotated["access_token"]):
        response = await client.post("/auth/revoke", data={"token": token})
        assert response.status_code == 200
        assert response.content == b""
    after = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert after.json()["error"] == "invalid_grant"


async def test_revoke_naming_another_client_revokes_nothing(client: AsyncClient) -> None:
    await register(client, "jan@example.com")
    tokens = await password_login(client, "jan@example.com", client_id="mobile")
    response = await client.post(
        "/auth/revoke", data={"token": tokens["refresh_token"], "client_id": "evil"}
    )
    assert response.status_code == 200
    still = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "mobile",
        },
    )
    assert still.status_code == 200


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
    assert token["401"]["headers"]["WWW-Authenticate"]["required"] is True
    revoke = paths["/auth/revoke"]["post"]["responses"]
    assert "content" not in revoke["200"]  # no body is sent
    revoked = await shared_client.post("/auth/revoke", data={"token": "nothing-of-ours"})
    assert (revoked.status_code, revoked.content) == (200, b"")
    assert "content-type" not in revoked.headers
