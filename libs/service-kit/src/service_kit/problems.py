"""RFC 9457 problem details for every error a service answers."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    """Build an `application/problem+json` response (RFC 9457 §3)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


def _field_name(location: tuple[Any, ...]) -> str:
    # FastAPI prefixes the location with its source ("body", "query", ...), which a
    # client reading the message does not need; keep it only when it is all there is.
    parts = [str(part) for part in location[1:]] or [str(part) for part in location]
    return ".".join(parts)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def allowed_methods(request: Request) -> list[str]:
    """Every method the app routes for the request's path (a 405's `Allow`).

    Starlette's 405 names only the methods of the first route whose path matched, so
    `/users/me`, served by a GET and a PATCH route, would claim to allow GET alone.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _http_exception(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
    return problem(exc.status_code, detail, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location, message and type: pydantic's "input" would echo what the
    # client sent, which may be a password.
    errors = [
        {"field": _field_name(tuple(error["loc"])), "message": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    fields = ", ".join(dict.fromkeys(error["field"] for error in errors))
    return problem(422, f"Invalid request: {fields}", errors=errors)


GATEWAY_PROBLEM_PATH = "/gateway/problems/{status}"


async def _gateway_problem_page(status: int) -> ProblemResponse:
    # Traefik has no way to answer JSON itself: for its own 404 and 413 it fetches this page
    # from whichever service is up and sends the body with its own status code.
    if not 400 <= status <= 599:  # the error classes of RFC 9110
        return problem(404)
    try:
        return problem(status)
    except ValueError:  # no phrase for an unassigned code
        return problem(status, title="Error")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer errors as problem details, and serve the gateway's problem pages.

    HTTP and validation errors become RFC 9457 documents instead of FastAPI's default;
    `GET /gateway/problems/{status}` is the body the gateway sends for errors it raises itself.
    """
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_api_route(GATEWAY_PROBLEM_PATH, _gateway_problem_page, include_in_schema=False)
