"""What the OpenAPI document says of the token and revocation endpoints.

Their forms are parsed by hand (strictly, `oauth.read_form`), so FastAPI cannot infer the
request bodies: they are declared here, with RFC 6749's error answers.
"""

from typing import Any

OAUTH_ERROR: dict[str, Any] = {
    "description": "RFC 6749 §5.2 error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {"type": "string"},
                    "error_description": {"type": "string"},
                },
            }
        }
    },
}


def _form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


TOKEN_FORM = _form_body(
    {
        "grant_type": {"type": "string", "enum": ["password", "refresh_token"]},
        "username": {"type": "string", "description": "email or username (password grant)"},
        "password": {"type": "string", "format": "password"},
        "refresh_token": {"type": "string", "description": "refresh_token grant"},
        "scope": {"type": "string"},
        "client_id": {"type": "string"},
    },
    ["grant_type"],
)
REVOKE_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]},
        "client_id": {"type": "string"},
    },
    ["token"],
)
TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "RFC 6749 §5.1 access token response"},
    400: OAUTH_ERROR,
    401: OAUTH_ERROR,
    429: {**OAUTH_ERROR, "description": "throttled sign-in: `invalid_grant`, Retry-After"},
    503: {**OAUTH_ERROR, "description": "no signing key loaded yet; Retry-After"},
}
REVOKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Revoked, or nothing to revoke"},
    400: OAUTH_ERROR,
}
