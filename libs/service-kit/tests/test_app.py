"""What `create_service_app` gives every service: routes and docs under its prefix, a
lifespan that ends with the database disposed, security headers on every answer and the body
limit (both safe without the gateway)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter, FastAPI, Request

from service_kit.security_headers import DOCS_CONTENT_SECURITY_POLICY
from testsupport.apps import serving
from testsupport.example_service import (
    UNREACHABLE_DATABASE,
    ExampleSettings,
    example_app,
    example_client,
)

pytestmark = pytest.mark.anyio

echo = APIRouter()


@echo.post("/echo")
async def echo_length(request: Request) -> dict[str, int]:
    return {"length": len(await request.body())}


async def test_routes_and_docs_live_under_the_service_prefix() -> None:
    async with example_client(UNREACHABLE_DATABASE, routers=[echo]) as client:
        assert (await client.post("/example/echo", content=b"abc")).json() == {"length": 3}
        assert (await client.post("/echo", content=b"abc")).status_code == 404
        assert (await client.get("/example/docs")).status_code == 200
        document = (await client.get("/example/openapi.json")).json()
    assert document["info"]["title"] == "Example"
    assert set(document["paths"]) == {"/example/echo", "/example/health", "/example/ready"}


async def test_the_service_lifespan_runs_inside_the_apps_and_the_database_is_disposed() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        events.append("started")
        yield
        events.append("stopped")

    app = example_app(ExampleSettings(database_url=UNREACHABLE_DATABASE), lifespan=lifespan)
    disposed = app.state.database.dispose

    async def dispose() -> None:
        events.append("disposed")
        await disposed()

    app.state.database.dispose = dispose
    async with serving(app, "http://example.test"):
        assert events == ["started"]
    assert events == ["started", "stopped", "disposed"]


@pytest.mark.parametrize("path", ["/example/health", "/example/echo", "/example/nope"])
async def test_api_answers_carry_the_security_headers(path: str) -> None:
    async with example_client(UNREACHABLE_DATABASE, routers=[echo]) as client:
        response = await client.get(path)
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("referrer-policy") == ["no-referrer"]
    assert response.headers.get_list("content-security-policy") == [
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ]
    assert "strict-transport-security" not in response.headers  # PUBLIC_URL is http here


async def test_the_docs_page_has_its_own_policy() -> None:
    async with example_client(UNREACHABLE_DATABASE) as client:
        response = await client.get("/example/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_CONTENT_SECURITY_POLICY


async def test_with_an_https_public_url_every_answer_carries_hsts() -> None:
    async with example_client(UNREACHABLE_DATABASE, public_url="https://example.com") as client:
        response = await client.get("/example/health")
    assert response.headers.get_list("strict-transport-security") == [
        "max-age=31536000; includeSubDomains"
    ]


async def test_the_body_limit_is_a_setting() -> None:
    async with example_client(UNREACHABLE_DATABASE, routers=[echo], max_body_bytes=2048) as client:
        small = await client.post("/example/echo", content=b" " * 2048)
        large = await client.post("/example/echo", content=b" " * 2049)
    assert small.json() == {"length": 2048}
    assert large.status_code == 413
    assert large.headers["content-type"] == "application/problem+json"


by_id = APIRouter()


@by_id.get("/{item_id}")
async def read_item(item_id: str) -> dict[str, str]:
    return {"item": item_id}


async def test_the_docs_are_the_services_own_whatever_its_routes_match() -> None:
    # `/example/{item_id}` would answer `/example/docs` if it came first.
    async with example_client(UNREACHABLE_DATABASE, routers=[by_id]) as client:
        page = await client.get("/example/docs")
        document = (await client.get("/example/openapi.json")).json()
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/example/docs/swagger-ui-bundle.js"></script>' in page.text
    not_ready = document["paths"]["/example/ready"]["get"]["responses"]["503"]
    assert not_ready["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    }
