"""The OpenAPI document lists the problem answers a service gives, declared once."""

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.security import HTTPBearer
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel

from service_kit.openapi import (
    GATEWAY_RATE_LIMITED,
    PROBLEM_DETAILS_SCHEMA,
    install_problem_documents,
    problem_response,
    problem_responses,
)
from service_kit.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers

pytestmark = pytest.mark.anyio

PROBLEM = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
bearer = HTTPBearer(auto_error=False)


class Note(BaseModel):
    text: str


def _app() -> FastAPI:
    app = FastAPI(openapi_url="/kit/openapi.json")
    install_problem_handlers(app)

    @app.get("/kit/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/kit/notes/{number}", responses=problem_responses(404))
    async def read(number: int) -> Note:
        return Note(text=str(number))

    @app.post("/kit/notes", responses={409: {"description": "Taken already."}, 429: {}})
    async def write(note: Note, _token: Annotated[Any, Depends(bearer)]) -> Note:
        return note

    @app.post("/kit/limited", responses={429: GATEWAY_RATE_LIMITED})
    async def limited() -> None:
        return None

    install_problem_documents(app)
    return app


def _responses(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = document["paths"][path][method]["responses"]
    return responses


def test_validation_errors_are_documented_as_the_problems_they_are() -> None:
    document = _app().openapi()
    invalid = _responses(document, "get", "/kit/notes/{number}")["422"]
    assert invalid["content"] == PROBLEM
    schemas = document["components"]["schemas"]
    assert schemas["ProblemDetails"] == PROBLEM_DETAILS_SCHEMA
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_an_operation_with_a_body_lists_the_body_limit_and_an_unreadable_body() -> None:
    document = _app().openapi()
    write = _responses(document, "post", "/kit/notes")
    assert write["413"]["content"] == PROBLEM
    assert write["400"]["content"] == PROBLEM
    assert "413" not in _responses(document, "get", "/kit/health")


def test_an_operation_behind_a_security_scheme_lists_401_and_its_challenge() -> None:
    document = _app().openapi()
    unauthorized = _responses(document, "post", "/kit/notes")["401"]
    assert unauthorized["content"] == PROBLEM
    assert unauthorized["headers"]["WWW-Authenticate"]["required"] is True
    assert "401" not in _responses(document, "get", "/kit/notes/{number}")


def test_a_route_adds_its_own_answers_and_a_bare_declaration_becomes_a_problem() -> None:
    document = _app().openapi()
    assert _responses(document, "get", "/kit/notes/{number}")["404"]["content"] == PROBLEM
    write = _responses(document, "post", "/kit/notes")
    assert write["409"] == problem_response(409, "Taken already.")
    assert write["429"]["headers"]["Retry-After"]["required"] is True
    assert write["429"]["content"] == PROBLEM


def test_the_gateways_rate_limit_is_plain_text_with_retry_after() -> None:
    limited = _responses(_app().openapi(), "post", "/kit/limited")["429"]
    assert list(limited["content"]) == ["text/plain"]
    assert "Retry-After" in limited["headers"]


async def test_the_served_document_is_the_completed_one_and_problems_match_it() -> None:
    app = _app()
    async with AsyncClient(transport=ASGITransport(app), base_url="http://kit.test") as client:
        document = (await client.get("/kit/openapi.json")).json()
        invalid = await client.get("/kit/notes/x")
    assert "ProblemDetails" in document["components"]["schemas"]
    assert invalid.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = invalid.json()
    schema = PROBLEM_DETAILS_SCHEMA
    assert set(schema["required"]) <= set(body)
    error_fields = schema["properties"]["errors"]["items"]["required"]
    assert all(set(error_fields) <= set(error) for error in body["errors"])
