"""Bodies over the limit are refused with 413 before they are read, and before any route runs.

These tests drive the ASGI app directly with a `receive` of their own, which counts what the
app pulls and fails the test if the app pulls past the limit: "without reading" is measured,
not assumed.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message

from service_kit.body_limit import BodySizeLimitMiddleware
from service_kit.problems import install_problem_handlers

pytestmark = pytest.mark.anyio

LIMIT = 1000
CHUNK = 100


class Body:
    """A request body streamed in chunks; pulling past `allowed` bytes fails the test."""

    def __init__(self, total: int, allowed: int) -> None:
        self.total = total
        self.allowed = allowed
        self.pulled = 0

    async def receive(self) -> Message:
        if self.pulled >= self.allowed:
            raise AssertionError(f"the app read past {self.allowed} bytes of the body")
        size = min(CHUNK, self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.pulled < self.total}


async def call(
    app: ASGIApp, receive: Callable[[], Awaitable[Message]], headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/things",
        "raw_path": b"/things",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.7", 5000),
        "server": ("kit.test", 80),
    }
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, json.loads(body) if body else None


def service(authenticated: list[str], **limit: Any) -> ASGIApp:
    """A FastAPI app whose route authenticates (a dependency) and then reads a JSON body."""
    app = FastAPI()
    install_problem_handlers(app)

    async def authenticate(authorization: Annotated[str | None, Header()] = None) -> str:
        authenticated.append(authorization or "")
        raise HTTPException(401, headers={"WWW-Authenticate": "Bearer"})

    @app.post("/things")
    async def things(body: dict[str, Any], caller: Annotated[str, Depends(authenticate)]) -> None:
        raise AssertionError("never reached")

    return BodySizeLimitMiddleware(app, max_bytes=LIMIT, **limit)


async def test_a_declared_length_over_the_limit_is_refused_without_reading_anything() -> None:
    authenticated: list[str] = []
    body = Body(total=20 * 1024 * 1024, allowed=0)
    status, headers, problem = await call(
        service(authenticated), body.receive, {"content-length": str(20 * 1024 * 1024)}
    )
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert problem["status"] == 413
    assert str(LIMIT) in problem["detail"]
    assert body.pulled == 0
    assert authenticated == []  # refused before any authentication ran
    assert headers["connection"] == "close"  # the unread body is not waited for


async def test_a_streamed_body_is_cut_off_once_past_the_limit_before_authentication() -> None:
    authenticated: list[str] = []
    # A 20 MiB chunked upload: the app may pull one chunk past the limit, never more.
    body = Body(total=20 * 1024 * 1024, allowed=LIMIT + CHUNK)
    status, headers, problem = await call(service(authenticated), body.receive, {})
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert problem["status"] == 413
    assert body.pulled == LIMIT + CHUNK
    assert authenticated == []
    assert headers["connection"] == "close"


async def test_a_body_within_the_limit_reaches_the_route() -> None:
    authenticated: list[str] = []
    payload = json.dumps({"a": "b" * 500}).encode()

    async def receive() -> Message:
        return {"type": "http.request", "body": payload, "more_body": False}

    status, _headers, _problem = await call(
        service(authenticated), receive, {"content-length": str(len(payload))}
    )
    assert status == 401
    assert authenticated == [""]


@pytest.mark.parametrize("length", ["abc", "-1", "1e9"])
async def test_a_content_length_that_is_not_a_number_is_refused(length: str) -> None:
    body = Body(total=10, allowed=0)
    status, _headers, _problem = await call(service([]), body.receive, {"content-length": length})
    assert status == 413
    assert body.pulled == 0


def oauth_refusal(path: str, detail: str) -> Response:
    return JSONResponse({"error": "invalid_request", "error_description": detail}, 413)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
async def test_the_refusal_hook_shapes_both_answers(declared: bool) -> None:
    body = Body(total=5000, allowed=0 if declared else LIMIT + CHUNK)
    headers = {"content-length": "5000"} if declared else {}
    status, response_headers, answer = await call(
        service([], refusal=oauth_refusal), body.receive, headers
    )
    assert status == 413
    assert response_headers["content-type"] == "application/json"
    assert answer["error"] == "invalid_request"


async def test_whatever_the_app_answers_to_an_overflow_is_replaced_by_the_refusal() -> None:
    async def swallowing_app(scope: Any, receive: Any, send: Any) -> None:
        try:
            while (await receive()).get("more_body"):
                pass
        except Exception:  # a careless route that answers 200 to anything
            await Response("fine", 200)(scope, receive, send)

    body = Body(total=5000, allowed=LIMIT + CHUNK)
    status, _headers, problem = await call(
        BodySizeLimitMiddleware(swallowing_app, max_bytes=LIMIT), body.receive, {}
    )
    assert status == 413
    assert problem["status"] == 413


async def test_a_route_that_reads_the_stream_itself_is_cut_off_too() -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/things")
    async def things(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    body = Body(total=5000, allowed=LIMIT + CHUNK)
    status, _headers, problem = await call(
        BodySizeLimitMiddleware(app, max_bytes=LIMIT), body.receive, {}
    )
    assert status == 413
    assert problem["status"] == 413
