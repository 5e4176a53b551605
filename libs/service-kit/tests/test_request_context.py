"""Request ids on every response and log line; crashes become a bare 500."""

import json
import logging

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from service_kit.logging import configure_logging
from service_kit.problems import install_problem_handlers
from service_kit.request_context import RequestContextMiddleware

pytestmark = pytest.mark.anyio


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        logging.getLogger("handler").info("inside the handler")
        return {"status": "ok"}

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("SELECT secret FROM accounts WHERE password = 'hunter2'")

    return app


def _client() -> AsyncClient:
    # raise_app_exceptions=False: the middleware must answer, not the transport.
    transport = ASGITransport(_app(), raise_app_exceptions=False)
    return AsyncClient(transport=transport, base_url="http://kit.test")


async def test_a_sane_request_id_is_kept() -> None:
    async with _client() as client:
        response = await client.get("/ok", headers={"X-Request-ID": "abc-123_x.y"})
    assert response.headers["x-request-id"] == "abc-123_x.y"


@pytest.mark.parametrize("bad", ["a b", "x" * 129, "<svg/onload=alert(1)>", "id\tab", ""])
async def test_a_malformed_request_id_is_replaced(bad: str) -> None:
    async with _client() as client:
        response = await client.get("/ok", headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


async def test_an_unhandled_exception_is_a_bare_500_problem_with_the_request_id() -> None:
    async with _client() as client:
        response = await client.get("/crash", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "crash-1"
    assert "SELECT" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["title"] == "Internal Server Error"


async def test_every_log_line_is_json_carrying_the_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("kit", "INFO")
    try:
        async with _client() as client:
            await client.get("/ok", headers={"X-Request-ID": "log-me"})
            await client.get("/crash", headers={"X-Request-ID": "log-crash"})
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    finally:
        logging.getLogger().handlers.clear()
    by_event = {(line["event"], line["request_id"]) for line in lines if "request_id" in line}
    assert ("inside the handler", "log-me") in by_event
    assert ("request", "log-me") in by_event
    assert ("unhandled_exception", "log-crash") in by_event
    assert all(line["service"] == "kit" for line in lines)
