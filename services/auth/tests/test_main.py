"""The auth app as `main` assembles it, safe without the gateway: it refuses oversized
bodies itself (RFC 6749's shape on its OAuth endpoints) before a bearer token is checked, and
finds the client's address by the same rule whether or not uvicorn's own proxy handling runs
first. (Security headers and the body limit as such are the chassis's:
libs/service-kit/tests/test_app.py.)"""

from typing import Any

import pytest
from httpx import AsyncClient
from starlette.types import Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from service_kit.client_address import ClientAddressMiddleware
from testsupport.apps import CHUNK, UploadBody, modules_loaded_with
from testsupport.forwarding_chains import SERVICE_CASES, TRUSTED_PROXIES, ChainCase

pytestmark = pytest.mark.anyio

ONE_MIB = 1024 * 1024


@pytest.mark.parametrize("path", ["/auth/token", "/auth/revoke"])
async def test_a_declared_oversized_oauth_request_is_an_rfc_6749_413_unread(
    shared_client: AsyncClient, path: str
) -> None:
    body = UploadBody(total=20 * ONE_MIB, allowed=0)
    response = await shared_client.post(
        path,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(20 * ONE_MIB),
        },
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "invalid_request"
    assert body.sent == 0


async def test_a_declared_oversized_body_is_refused_before_the_bearer_token_is_checked(
    shared_client: AsyncClient,
) -> None:
    body = UploadBody(total=20 * ONE_MIB, allowed=0)
    response = await shared_client.post(
        "/auth/password",  # no token: the 413 comes first
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(20 * ONE_MIB)},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert body.sent == 0


async def test_a_streamed_registration_is_cut_off_just_past_the_limit(
    shared_client: AsyncClient,
) -> None:
    body = UploadBody(total=20 * ONE_MIB, allowed=ONE_MIB + CHUNK)
    response = await shared_client.post(
        "/auth/register", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert body.sent == ONE_MIB + CHUNK


async def test_the_form_parser_keeps_its_own_smaller_limit(shared_client: AsyncClient) -> None:
    body = UploadBody(total=ONE_MIB, allowed=CHUNK)  # 16 KiB: the first chunk is past it
    response = await shared_client.post(
        "/auth/token", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"
    assert body.sent == CHUNK


async def client_seen(app_in_front: Any, case: ChainCase) -> Any:
    seen: list[Any] = []

    async def route(scope: Scope, _receive: Receive, _send: Send) -> None:
        seen.append(scope["client"][0] if scope["client"] else None)

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(_message: Message) -> None:
        return None

    scope = {
        "type": "http",
        "headers": [(name.encode(), value.encode()) for name, value in case.headers],
        "client": (case.peer, 40000) if case.peer else None,
    }
    await app_in_front(route)(scope, receive, send)
    return seen[0]


@pytest.mark.parametrize(
    "case",
    [case for case in SERVICE_CASES if not case.deployment.startswith("lambda")],
    ids=lambda case: case.id,
)
async def test_uvicorns_proxy_headers_in_front_change_no_chains_answer(case: ChainCase) -> None:
    # `auth-service serve` still turns uvicorn's proxy_headers on, with the same
    # TRUSTED_PROXIES: its rewrite, then service-kit's rule, give service-kit's answer.
    trusted = TRUSTED_PROXIES[case.deployment]

    def kit_only(route: Any) -> Any:
        return ClientAddressMiddleware(route, trusted)

    def uvicorn_then_kit(route: Any) -> Any:
        kit: Any = ClientAddressMiddleware(route, trusted)  # starlette's ASGI types, not uvicorn's
        return ProxyHeadersMiddleware(kit, trusted)

    assert await client_seen(kit_only, case) == case.client
    assert await client_seen(uvicorn_then_kit, case) == case.client


# What a request path never needs at start (issue 16, part 6: idle memory): the templates and
# the SMTP client come with the first page or message, the migrations with `migrate`, the
# password-strength dictionaries with the first password chosen, PostgreSQL's dialect and
# driver only on PostgreSQL.
DEFERRED_IMPORTS = [
    "aiosmtplib",
    "alembic",
    "asyncpg",
    "jinja2",
    "sqlalchemy.dialects.postgresql",
    "zxcvbn",
]


def test_the_app_module_imports_nothing_only_some_requests_need() -> None:
    assert modules_loaded_with("auth_service.main", DEFERRED_IMPORTS) == []
