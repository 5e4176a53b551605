"""What the OpenAPI documents say about errors: every answer a service really gives.

Error bodies are RFC 9457 problem details (`application/problem+json`, service_kit.problems),
described once here as the `ProblemDetails` schema component. `install_problem_documents(app)`
adds what follows from an operation's shape to every operation of the app:

- 422 (FastAPI lists its own `HTTPValidationError` as `application/json`; the body is a problem);
- 413 for an operation that takes a body (the body limit), and 400 for a JSON body that is
  not UTF-8 (FastAPI refuses it before validation);
- 401 with its `WWW-Authenticate` challenge for an operation that declares a security scheme;
- 503 with `Retry-After` (the process is at MAX_CONCURRENT_REQUESTS, service_kit.overload)
  for every operation but the health probes.

A route adds its own answers with `problem_responses(403, 404, …)` in its `responses`; an error
a route declares with an empty body (`{401: {}}`) is completed the same way.
"""

from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

from service_kit.problems import PROBLEM_MEDIA_TYPE

PROBLEM_SCHEMA_NAME = "ProblemDetails"
PROBLEM_SCHEMA_REF = f"#/components/schemas/{PROBLEM_SCHEMA_NAME}"
# FastAPI's description of its own 422 body, which the problem replaces.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

PROBLEM_DETAILS_SCHEMA: dict[str, Any] = {
    "title": PROBLEM_SCHEMA_NAME,
    "description": (
        "RFC 9457 problem details: the body of every error answer, as "
        f"`{PROBLEM_MEDIA_TYPE}`. Members other than these may be added."
    ),
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "`about:blank`: the status says it all"},
        "title": {"type": "string", "description": "the status's reason phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "errors": {
            "type": "array",
            "description": "422: each invalid member of the request",
            "items": {
                "type": "object",
                "required": ["field", "message", "type"],
                "properties": {
                    "field": {"type": "string", "description": "`email`, `limit`, `body`…"},
                    "message": {"type": "string"},
                    "type": {"type": "string", "description": "the rule broken"},
                },
            },
        },
        "field": {"type": "string", "description": "409: the member whose value is taken"},
    },
}

WWW_AUTHENTICATE = "WWW-Authenticate"
RETRY_AFTER = "Retry-After"


def _header(description: str, schema: Mapping[str, Any], *, required: bool) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": dict(schema)}


BEARER_CHALLENGE = _header(
    'RFC 6750 §3: `Bearer` when no token was sent, `Bearer error="invalid_token"` when it '
    "is bad, expired, revoked or not meant for this service",
    {"type": "string", "pattern": "^Bearer"},
    required=True,
)
SCOPE_CHALLENGE = _header(
    '`Bearer error="insufficient_scope", scope="…"` when a scope is missing',
    {"type": "string", "pattern": "^Bearer"},
    required=False,
)
RETRY_AFTER_SECONDS = _header(
    "seconds to wait before trying again", {"type": "integer", "minimum": 0}, required=True
)

# The description and headers of each status a route may declare (RFC 9110 §15).
_PROBLEMS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The request cannot be read: a JSON body that is not UTF-8, say.", {}),
    401: ("No access token, or one that is not valid here.", {WWW_AUTHENTICATE: BEARER_CHALLENGE}),
    403: ("The token is valid but may not do this.", {WWW_AUTHENTICATE: SCOPE_CHALLENGE}),
    404: ("There is no such resource.", {}),
    409: ("The request conflicts with what is stored.", {}),
    413: ("The request body is over the service's limit (`MAX_BODY_BYTES`).", {}),
    415: ("The body must be `application/json`.", {}),
    422: ("The request is invalid; `errors` names each member and the rule it breaks.", {}),
    429: ("Too many attempts: wait `Retry-After` seconds.", {RETRY_AFTER: RETRY_AFTER_SECONDS}),
    503: ("Not able to serve now; try again later.", {}),
}


def problem_content() -> dict[str, Any]:
    """The `content` of a problem answer, for a response that may also have another body."""
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}}


# The gateway's rate limit (GATEWAY_RATE_*, on the credential endpoints) answers before the
# service and in Traefik's own words: plain text, never a problem.
GATEWAY_RATE_LIMITED: dict[str, Any] = {
    "description": "The gateway's per-address rate limit: wait `Retry-After` seconds.",
    "headers": {RETRY_AFTER: RETRY_AFTER_SECONDS},
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


def problem_response(
    status: int, description: str | None = None, headers: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One error answer as an OpenAPI response object: a `ProblemDetails` body, the status's
    usual headers (`WWW-Authenticate` for 401, `Retry-After` for 429) unless `headers` says."""
    usual_description, usual_headers = _PROBLEMS.get(status, (HTTPStatus(status).phrase, {}))
    response: dict[str, Any] = {
        "description": description or usual_description,
        "content": problem_content(),
    }
    chosen = usual_headers if headers is None else headers
    if chosen:
        response["headers"] = dict(chosen)
    return response


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's own error answers, for its `responses`: `responses=problem_responses(404)`."""
    return {status: problem_response(status) for status in statuses}


def at_capacity() -> dict[str, Any]:
    """The 503 every operation may answer when its process is at MAX_CONCURRENT_REQUESTS."""
    return problem_response(
        503,
        "At capacity (`MAX_CONCURRENT_REQUESTS`): try again after `Retry-After` seconds.",
        {RETRY_AFTER: RETRY_AFTER_SECONDS},
    )


def _is_fastapi_validation_error(response: Mapping[str, Any]) -> bool:
    content = response.get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")


def _completed(status: int, declared: Mapping[str, Any]) -> dict[str, Any]:
    """A problem answer for an error declared without a body (or with FastAPI's 422 body);
    a description the route wrote is kept, FastAPI's fillers are not."""
    description = declared.get("description")
    if description in (HTTPStatus(status).phrase, "Validation Error"):
        description = None
    return problem_response(status, description, declared.get("headers"))


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, response in list(responses.items()):
        if not status.isdigit() or int(status) < 400:
            continue
        if not response.get("content") or _is_fastapi_validation_error(response):
            responses[status] = _completed(int(status), response)
    body = operation.get("requestBody")
    if body is not None:
        responses.setdefault("413", problem_response(413))
        if "application/json" in body.get("content", {}):
            responses.setdefault("400", problem_response(400))
    if operation.get("security"):
        responses.setdefault("401", problem_response(401))
    if "health" not in operation.get("tags", ()):
        responses.setdefault("503", at_capacity())
    operation["responses"] = dict(sorted(responses.items()))


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Complete an OpenAPI document with the problem answers (see the module's docstring)."""
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _HTTP_METHODS:
                _document_operation(operation)
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[PROBLEM_SCHEMA_NAME] = PROBLEM_DETAILS_SCHEMA
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document


def install_problem_documents(app: FastAPI) -> None:
    """Make `app.openapi()` (and `/…/openapi.json`) describe the problem answers; built once."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    # FastAPI's documented way to extend the document: replace the app's `openapi`.
    app.openapi = openapi  # type: ignore[method-assign]
