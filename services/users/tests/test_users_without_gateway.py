"""Safe without the gateway: the users service refuses oversized bodies itself, before
authentication and without reading them, and sets the API security headers itself."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from token_minting import JwksServer, settings_for

from service_kit.security_headers import DOCS_CONTENT_SECURITY_POLICY
from users_service.main import create_app

pytestmark = pytest.mark.anyio

TWENTY_MIB = 20 * 1024 * 1024
CHUNK = 64 * 1024


class UploadBody:
    """A 20 MiB upload in 64 KiB chunks that fails the test if pulled past `allowed` bytes."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < TWENTY_MIB:
            if self.sent >= self.allowed:
                raise AssertionError(f"the service read past {self.allowed} bytes")
            self.sent += CHUNK
            yield b"x" * CHUNK


@asynccontextmanager
async def users_client(
    database_url: str, jwks_server: JwksServer, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings_for(database_url).model_copy(update=settings)
    app = create_app(configured, jwks_transport=jwks_server.transport)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://users.test"
        ) as http,
    ):
        yield http


@pytest.fixture
def client_with(database_url: str, jwks_server: JwksServer) -> Callable[..., Any]:
    return lambda **settings: users_client(database_url, jwks_server, **settings)


async def test_a_declared_20_mib_body_is_413_before_authentication_and_unread(
    client: httpx.AsyncClient,
) -> None:
    body = UploadBody(allowed=0)
    response = await client.patch(
        "/users/me",  # no token: without the limit this read 20 MiB, then answered 401
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(TWENTY_MIB)},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413
    assert body.sent == 0


async def test_a_streamed_body_is_cut_off_past_one_mib_before_authentication(
    client: httpx.AsyncClient,
) -> None:
    one_mib = 1024 * 1024
    body = UploadBody(allowed=one_mib + CHUNK)
    response = await client.patch(
        "/users/me", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert body.sent == one_mib + CHUNK


async def test_the_limit_is_a_setting(client_with: Callable[..., Any]) -> None:
    async with client_with(max_body_bytes=2048) as client:
        small = await client.patch(
            "/users/me", content=b"{}" + b" " * 2000, headers={"Content-Type": "application/json"}
        )
        large = await client.patch(
            "/users/me", content=b"{}" + b" " * 3000, headers={"Content-Type": "application/json"}
        )
    assert small.status_code == 401  # reached the route: no token
    assert large.status_code == 413


@pytest.mark.parametrize("path", ["/users/health", "/users/me", "/users/nope"])
async def test_api_answers_carry_the_security_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("referrer-policy") == ["no-referrer"]
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "strict-transport-security" not in response.headers  # PUBLIC_URL is http here


async def test_the_docs_page_has_its_own_policy(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY


async def test_with_an_https_public_url_every_answer_carries_hsts(
    client_with: Callable[..., Any],
) -> None:
    async with client_with(public_url="https://auth.example.com") as client:
        response = await client.get("/users/health")
    assert response.headers.get_list("strict-transport-security") == [
        "max-age=31536000; includeSubDomains"
    ]
