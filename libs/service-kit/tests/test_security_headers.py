"""The security headers a service sets itself: on every answer, once, docs pages their own."""

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from httpx import ASGITransport, AsyncClient

from service_kit.middleware import install_middleware
from service_kit.problems import install_problem_handlers
from service_kit.security_headers import (
    API_CONTENT_SECURITY_POLICY,
    DOCS_CONTENT_SECURITY_POLICY,
    STRICT_TRANSPORT_SECURITY,
)

pytestmark = pytest.mark.anyio

API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": API_CONTENT_SECURITY_POLICY,
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def app(public_url: str) -> FastAPI:
    app = FastAPI(docs_url="/kit/docs", openapi_url="/kit/openapi.json")
    install_problem_handlers(app)
    install_middleware(
        app,
        max_body_bytes=1000,
        trusted_proxies="",
        public_url=public_url,
        docs_prefix="/kit/docs",
    )

    @app.get("/kit/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/kit/framed")
    async def framed() -> Response:
        # A route that sets a laxer header of its own: the service's policy still wins.
        return Response("x", headers={"X-Frame-Options": "SAMEORIGIN"})

    @app.get("/kit/missing")
    async def missing() -> None:
        raise HTTPException(404)

    @app.get("/kit/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    return app


def client(public_url: str = "http://127.0.0.1:8000") -> AsyncClient:
    transport = ASGITransport(app(public_url), raise_app_exceptions=False)
    return AsyncClient(transport=transport, base_url="http://kit.test")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/kit/ok", None, 200),
        ("GET", "/kit/framed", None, 200),
        ("GET", "/kit/missing", None, 404),
        ("GET", "/nowhere", None, 404),
        ("DELETE", "/kit/ok", None, 405),
        ("POST", "/kit/ok", b"x" * 2000, 413),
        ("GET", "/kit/crash", None, 500),
        ("GET", "/kit/openapi.json", None, 200),
    ],
)
async def test_every_api_answer_carries_each_header_once(
    method: str, path: str, body: bytes | None, status: int
) -> None:
    async with client() as http:
        response = await http.request(method, path, content=body)
    assert response.status_code == status
    for name, value in API_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    assert "strict-transport-security" not in response.headers


async def test_the_docs_page_gets_a_policy_that_lets_swagger_ui_load() -> None:
    async with client() as http:
        response = await http.get("/kit/docs")
    assert response.status_code == 200
    assert response.headers.get_list("content-security-policy") == [DOCS_CONTENT_SECURITY_POLICY]
    assert "script-src 'self';" in DOCS_CONTENT_SECURITY_POLICY  # no CDN, no inline script
    assert response.headers["x-frame-options"] == "DENY"
    assert "cross-origin-opener-policy" not in response.headers


async def test_hsts_is_sent_when_the_public_url_is_https() -> None:
    async with client("https://auth.example.com") as http:
        for path in ("/kit/ok", "/kit/docs", "/nowhere"):
            response = await http.get(path)
            assert response.headers.get_list("strict-transport-security") == [
                STRICT_TRANSPORT_SECURITY
            ], path
