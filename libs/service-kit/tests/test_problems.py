"""Problem details for HTTP and validation errors."""

import pytest
from fastapi import FastAPI, HTTPException
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel, Field

from service_kit.problems import install_problem_handlers

pytestmark = pytest.mark.anyio


class Login(BaseModel):
    email: str
    password: str = Field(min_length=8)


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/login")
    async def login(body: Login) -> dict[str, str]:
        return {"email": body.email}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "Short and stout.", headers={"X-Kettle": "on"})

    return app


async def _client() -> AsyncClient:
    return AsyncClient(transport=ASGITransport(_app()), base_url="http://kit.test")


async def test_http_errors_are_problem_details_keeping_their_headers() -> None:
    async with await _client() as client:
        response = await client.get("/teapot")
    assert response.status_code == 418
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-kettle"] == "on"
    assert response.json() == {
        "type": "about:blank",
        "title": "I'm a Teapot",
        "status": 418,
        "detail": "Short and stout.",
    }


async def test_validation_errors_are_422_naming_the_field() -> None:
    async with await _client() as client:
        response = await client.post("/login", json={"email": "a@example.com", "password": "short"})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "Invalid request: password"
    assert body["errors"][0]["field"] == "password"


async def test_validation_errors_never_echo_the_input() -> None:
    async with await _client() as client:
        response = await client.post("/login", json={"email": "a@example.com", "password": "s3cr"})
    assert "s3cr" not in response.text


async def test_a_body_that_is_not_json_is_a_422_problem() -> None:
    async with await _client() as client:
        response = await client.post(
            "/login", content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_paths_and_wrong_methods_are_problems() -> None:
    async with await _client() as client:
        missing = await client.get("/nowhere")
        wrong_method = await client.delete("/login")
    assert (missing.status_code, missing.json()["title"]) == (404, "Not Found")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


async def test_a_405_allows_every_method_routed_for_the_path_not_one_routes() -> None:
    app = _app()

    @app.patch("/teapot")
    async def refill() -> None:
        return None

    async with AsyncClient(transport=ASGITransport(app), base_url="http://kit.test") as client:
        response = await client.delete("/teapot")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, PATCH"
