"""The token endpoint's grants and RFC 7009 revocation: sign-in by email or username,
rotation and reuse, throttling, registered clients (what each grant issues them and each
refusal) and scopes; each grant one committed operation."""

import asyncio
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from httpx import USE_CLIENT_DEFAULT, AsyncClient, BasicAuth

from testsupport.auth_service import STRONG_PASSWORD, add_client, password_login, register
from testsupport.client_keys import assertion, assertion_form, rsa_jwk

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


async def test_refresh_rotates_and_reuse_revokes_the_session(client: AsyncClient) -> None:
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
    client: AsyncClient, database_url: str
) -> None:
    for client_id in ("web-app", "other-app"):
        await add_client(database_url, client_id)
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


async def test_revoke_naming_another_client_revokes_nothing(
    client: AsyncClient, database_url: str
) -> None:
    for client_id in ("mobile", "evil"):
        await add_client(database_url, client_id)
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


TOKEN_ENDPOINT = "http://127.0.0.1:8000/auth/token"  # PUBLIC_URL's default, as the tests run


def _claims(body: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(body["access_token"], options={"verify_signature": False})
    return claims


async def _grant(
    client: AsyncClient, secret: str | None, client_id: str = "reports", **form: str
) -> Any:
    auth = BasicAuth(client_id, secret) if secret is not None else USE_CLIENT_DEFAULT
    return await client.post(
        "/auth/token", data={"grant_type": "client_credentials", **form}, auth=auth
    )


async def test_client_credentials_issue_a_services_own_token(
    client: AsyncClient, database_url: str
) -> None:
    secret = await add_client(
        database_url, "reports", "confidential", scopes=["profile", "users:read"]
    )
    response = await _grant(client, secret)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}  # no refresh
    assert (body["token_type"], body["expires_in"], body["scope"]) == (
        "Bearer",
        900,
        "profile users:read",
    )
    claims = _claims(body)
    assert claims["sub"] == claims["client_id"] == "reports"
    assert "sid" not in claims
    assert claims["roles"] == []
    assert claims["aud"] == "auth-platform"  # ACCESS_TOKEN_AUDIENCE: it has no audiences
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"


async def test_client_credentials_scopes_are_the_clients_only(
    client: AsyncClient, database_url: str
) -> None:
    secret = await add_client(database_url, "reports", "confidential", scopes=["users:read"])
    narrower = await _grant(client, secret, scope="users:read")
    assert narrower.json()["scope"] == "users:read"
    for scope in ("profile", "users:read admin", "users:read profile"):
        refused = await _grant(client, secret, scope=scope)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope"), scope


async def test_a_resource_picks_the_audience_among_the_clients(
    client: AsyncClient, database_url: str
) -> None:
    audiences = ["https://users.example", "https://billing.example"]
    secret = await add_client(database_url, "reports", "confidential", audiences=audiences)
    assert _claims((await _grant(client, secret)).json())["aud"] == audiences[0]
    picked = await _grant(client, secret, resource=audiences[1])
    assert _claims(picked.json())["aud"] == audiences[1]
    for resource in ("https://elsewhere.example", "auth-platform"):
        refused = await _grant(client, secret, resource=resource)
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_target")


async def test_a_client_lifetime_override_shortens_its_tokens(
    client: AsyncClient, database_url: str
) -> None:
    secret = await add_client(database_url, "reports", "confidential", access_token_ttl_seconds=120)
    body = (await _grant(client, secret)).json()
    assert body["expires_in"] == 120
    claims = _claims(body)
    assert claims["exp"] - claims["iat"] == 120


async def test_client_credentials_with_private_key_jwt(
    client: AsyncClient, database_url: str
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    await add_client(database_url, "keyed", "confidential", jwks={"keys": [rsa_jwk(key, "k1")]})
    form = {"grant_type": "client_credentials"}
    token = assertion("keyed", key, TOKEN_ENDPOINT, kid="k1")
    response = await client.post("/auth/token", data={**form, **assertion_form(token)})
    assert response.status_code == 200, response.text
    assert _claims(response.json())["sub"] == "keyed"
    replayed = await client.post("/auth/token", data={**form, **assertion_form(token)})
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
    assert "www-authenticate" not in replayed.headers


async def test_a_client_gets_only_the_grants_it_was_registered_with(
    client: AsyncClient, database_url: str
) -> None:
    secret = await add_client(database_url, "reports", "confidential")
    await register(client, "una@example.com")
    password = {"grant_type": "password", "username": "una@example.com"}
    refused = await client.post(
        "/auth/token",
        data={**password, "password": STRONG_PASSWORD},
        auth=BasicAuth("reports", secret or ""),
    )
    assert (refused.status_code, refused.json()["error"]) == (400, "unauthorized_client")
    # The default public client has password and refresh_token, not client_credentials.
    default = await client.post("/auth/token", data={"grant_type": "client_credentials"})
    assert (default.status_code, default.json()["error"]) == (400, "unauthorized_client")


async def test_an_unregistered_client_is_an_invalid_client(client: AsyncClient) -> None:
    await register(client, "vic@example.com")
    form = {"grant_type": "password", "username": "vic@example.com", "password": STRONG_PASSWORD}
    for grant in (
        {**form, "client_id": "never-registered"},
        {"grant_type": "client_credentials", "client_id": "never-registered"},
        {"grant_type": "refresh_token", "refresh_token": "x" * 43, "client_id": "nobody"},
    ):
        response = await client.post("/auth/token", data=grant)
        assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    wrong = await _grant(client, "a-secret", client_id="never-registered")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.headers["www-authenticate"].startswith("Basic ")


async def test_a_confidential_clients_session_needs_its_authentication_to_refresh(
    client: AsyncClient, database_url: str
) -> None:
    secret = await add_client(
        database_url,
        "web-backend",
        "confidential",
        grant_types=["password", "refresh_token"],
        scopes=["profile"],
    )
    assert secret is not None
    await register(client, "wes@example.com")
    tokens = await password_login(
        client, "wes@example.com", client_id="web-backend", client_secret=secret
    )
    assert _claims(tokens)["client_id"] == "web-backend"
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    # Named without its secret: refused before the token is looked at.
    unproven = await client.post("/auth/token", data={**refresh, "client_id": "web-backend"})
    assert (unproven.status_code, unproven.json()["error"]) == (401, "invalid_client")
    # Not named: the default client's request, and the session is not the default client's.
    anonymous = await client.post("/auth/token", data=refresh)
    assert (anonymous.status_code, anonymous.json()["error"]) == (400, "invalid_grant")
    wrong = await client.post("/auth/token", data=refresh, auth=BasicAuth("web-backend", "x"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    refreshed = await client.post(
        "/auth/token", data=refresh, auth=BasicAuth("web-backend", secret)
    )
    assert refreshed.status_code == 200, refreshed.text
    assert _claims(refreshed.json())["client_id"] == "web-backend"


async def test_a_persons_token_never_carries_users_read_through_the_default_client(
    client: AsyncClient,
) -> None:
    await register(client, "xia@example.com")
    tokens = await password_login(client, "xia@example.com")
    assert tokens["scope"] == "profile"
    refused = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "xia@example.com",
            "password": STRONG_PASSWORD,
            "scope": "users:read",
        },
    )
    assert refused.json()["error"] == "invalid_scope"


async def test_a_confidential_client_revokes_its_session_only_when_authenticated(
    client: AsyncClient, database_url: str
) -> None:
    secret = await add_client(
        database_url,
        "web-backend",
        "confidential",
        grant_types=["password", "refresh_token"],
        scopes=["profile"],
    )
    assert secret is not None
    await register(client, "kim@example.com")
    tokens = await password_login(
        client, "kim@example.com", client_id="web-backend", client_secret=secret
    )
    revoke = {"token": tokens["refresh_token"]}
    for auth, form in (
        (USE_CLIENT_DEFAULT, {"client_id": "web-backend"}),
        (BasicAuth("web-backend", "wrong"), {}),
    ):
        refused = await client.post("/auth/revoke", data={**revoke, **form}, auth=auth)
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    # The default client may not revoke another client's session: 200, nothing revoked.
    assert (await client.post("/auth/revoke", data=revoke)).status_code == 200
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    proof = BasicAuth("web-backend", secret)
    alive = await client.post("/auth/token", data=refresh, auth=proof)
    assert alive.status_code == 200
    successor = alive.json()["refresh_token"]
    revoked = await client.post("/auth/revoke", data={"token": successor}, auth=proof)
    assert revoked.status_code == 200
    assert revoked.content == b""
    after = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": successor},
        auth=proof,
    )
    assert after.json()["error"] == "invalid_grant"


async def test_an_unregistered_client_cannot_revoke(client: AsyncClient) -> None:
    await register(client, "lou@example.com")
    tokens = await password_login(client, "lou@example.com")
    refused = await client.post(
        "/auth/revoke", data={"token": tokens["refresh_token"], "client_id": "nobody"}
    )
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    still = await client.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert still.status_code == 200
