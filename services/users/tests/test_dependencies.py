"""CurrentUser and RequireRole: RFC 6750 challenges, one body for every bad token, 403s."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from token_minting import POLICY, SigningKey, StaticKeys, mint

from service_kit.problems import install_problem_handlers
from users_service.dependencies import Admin, CurrentUser
from users_service.token_cache import VerifiedTokenCache
from users_service.tokens import TokenVerifier

pytestmark = pytest.mark.anyio

INVALID = 'Bearer error="invalid_token"'


@pytest.fixture
async def client(signing_key: SigningKey) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.token_verifier = TokenVerifier(
        StaticKeys(signing_key), POLICY, VerifiedTokenCache(100)
    )

    @app.get("/whoami")
    async def whoami(user: CurrentUser) -> dict[str, str]:
        return {"sub": str(user.subject)}

    @app.get("/admin")
    async def admin(user: Admin) -> dict[str, str]:
        return {"sub": str(user.subject)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": ""},
    ],
)
async def test_no_bearer_token_is_a_401_with_a_bare_challenge(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


async def test_every_bad_token_gets_the_same_401(
    client: httpx.AsyncClient, signing_key: SigningKey, other_key: SigningKey
) -> None:
    now = int(time.time())
    header, payload, _signature = mint(signing_key).split(".")
    bad_tokens = [
        "garbage",
        mint(signing_key, exp=now - 3600, iat=now - 7200),  # expired
        mint(other_key),  # unknown kid
        mint(signing_key, aud="someone-else"),
        mint(signing_key, headers={"typ": "JWT"}),
        f"{header}.{payload}.",
        "x" * 10_000,
    ]
    bodies = set()
    for token in bad_tokens:
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == INVALID
        bodies.add(response.text)
    assert len(bodies) == 1


async def test_a_good_token_passes_with_any_case_of_the_scheme(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key)
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = await client.get("/whoami", headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200


async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")]
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID


async def test_a_missing_role_is_a_403_problem(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key, roles=["user"])
    response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "admin" in response.json()["detail"]


async def test_the_role_admits_its_holder(
    client: httpx.AsyncClient, signing_key: SigningKey
) -> None:
    token = mint(signing_key, roles=["user", "admin"])
    response = await client.get("/admin", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_a_bad_token_on_a_role_route_is_still_a_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
