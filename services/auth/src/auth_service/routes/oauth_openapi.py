"""What the OpenAPI document says of the token, revocation and introspection endpoints.

Their forms are parsed by hand (strictly, `oauth.read_form`), so FastAPI cannot infer the
request bodies: they are declared here, with every way a client authenticates
(`client_auth`) and RFC 6749's error answers.
"""

from typing import Any

from auth_service.client_auth import ASSERTION_TYPE
from auth_service.grants import GRANT_TYPES, TOKEN_TYPE_HINTS


def oauth_error(description: str, codes: list[str]) -> dict[str, Any]:
    return {
        "description": f"{description} (RFC 6749 §5.2: {', '.join(codes)})",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string", "enum": codes},
                        "error_description": {"type": "string"},
                    },
                }
            }
        },
    }


_INVALID_CLIENT = oauth_error(
    "client authentication failed; `WWW-Authenticate: Basic` when Basic was used",
    ["invalid_client"],
)
_THROTTLED_CLIENT = {
    **oauth_error("too many failed client authentications; Retry-After", ["invalid_client"]),
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
_TOO_LARGE = oauth_error("the body is over its limit", ["invalid_request"])

# Every endpoint authenticates clients the same way (`client_auth`).
_CLIENT_AUTHENTICATION = {
    "client_id": {"type": "string", "description": "the client (default: DEFAULT_CLIENT_ID)"},
    "client_secret": {
        "type": "string",
        "format": "password",
        "description": "client_secret_post; or HTTP Basic (client_secret_basic)",
    },
    "client_assertion_type": {"type": "string", "enum": [ASSERTION_TYPE]},
    "client_assertion": {
        "type": "string",
        "description": "private_key_jwt (RFC 7523): a JWT signed with a key of the client's",
    },
}


def _form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    # The form is parsed by hand (strictly), so its schema is declared for the docs here.
    schema = {
        "type": "object",
        "properties": {**properties, **_CLIENT_AUTHENTICATION},
        "required": required,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        },
        # HTTP Basic is one way for a client to authenticate; the others are in the form.
        "security": [{"clientBasic": []}, {}],
    }


TOKEN_FORM = _form_body(
    {
        "grant_type": {"type": "string", "enum": list(GRANT_TYPES)},
        "username": {"type": "string", "description": "email or username (password grant)"},
        "password": {"type": "string", "format": "password"},
        "refresh_token": {"type": "string", "description": "refresh_token grant"},
        "scope": {"type": "string", "description": "space-separated, among the client's"},
        "resource": {
            "type": "string",
            "description": "RFC 8707: the token's audience, among the client's",
        },
    },
    ["grant_type"],
)
REVOKE_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": list(TOKEN_TYPE_HINTS)},
    },
    ["token"],
)
INTROSPECT_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
    },
    ["token"],
)
_TOKEN_ANSWER = {
    "description": "RFC 6749 §5.1 access token response (no refresh token for client_credentials)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["access_token", "token_type", "expires_in", "scope"],
                "properties": {
                    "access_token": {"type": "string"},
                    "token_type": {"type": "string", "enum": ["Bearer"]},
                    "expires_in": {"type": "integer"},
                    "refresh_token": {"type": "string"},
                    "scope": {"type": "string"},
                },
            }
        }
    },
}
_INTROSPECTION_ANSWER = {
    "description": "RFC 7662 §2.2: `active`, and a live access token's claims",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["active"],
                "properties": {
                    "active": {"type": "boolean"},
                    "token_type": {"type": "string", "enum": ["Bearer"]},
                    "iss": {"type": "string"},
                    "sub": {"type": "string"},
                    "aud": {"type": "string"},
                    "exp": {"type": "integer"},
                    "iat": {"type": "integer"},
                    "jti": {"type": "string"},
                    "client_id": {"type": "string"},
                    "scope": {"type": "string"},
                    "roles": {"type": "array", "items": {"type": "string"}},
                    "sid": {"type": "string"},
                },
            }
        }
    },
}


TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _TOKEN_ANSWER,
    400: oauth_error(
        "bad request",
        [
            "invalid_request",
            "invalid_grant",
            "invalid_scope",
            "invalid_target",
            "unauthorized_client",
            "unsupported_grant_type",
        ],
    ),
    401: _INVALID_CLIENT,
    413: _TOO_LARGE,
    429: {
        **oauth_error(
            "throttled: a sign-in (`invalid_grant`) or a client authentication "
            "(`invalid_client`); Retry-After",
            ["invalid_grant", "invalid_client"],
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    503: oauth_error("no signing key loaded yet; Retry-After", ["invalid_request"]),
}
REVOKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Revoked, or nothing to revoke"},
    400: oauth_error("bad request", ["invalid_request"]),
    401: _INVALID_CLIENT,
    413: _TOO_LARGE,
    429: _THROTTLED_CLIENT,
}
INTROSPECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _INTROSPECTION_ANSWER,
    400: oauth_error("bad request", ["invalid_request"]),
    401: _INVALID_CLIENT,
    413: _TOO_LARGE,
    429: _THROTTLED_CLIENT,
}
