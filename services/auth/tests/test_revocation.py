"""Revocation (RFC 7009) by registered clients: each revokes its own sessions only."""

import pytest
from helpers import add_client, password_login, register
from httpx import USE_CLIENT_DEFAULT, AsyncClient, BasicAuth

pytestmark = pytest.mark.anyio


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
