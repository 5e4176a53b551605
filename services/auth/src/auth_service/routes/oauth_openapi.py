"""How the OpenAPI document describes the token (RFC 6749), revocation (RFC 7009) and
introspection (RFC 7662) endpoints.

Their forms are parsed by hand, strictly (auth_service.oauth), so FastAPI cannot describe
them; their errors are RFC 6749 §5.2 bodies, not problem details. Each takes the client's
authentication (`client_auth`): HTTP Basic (`client_secret_basic`), or form fields
(`client_secret_post`, `private_key_jwt`). What the gateway answers in front of them (its rate
limit's 429, its own 413) is listed too: it is what clients see.
"""

from typing import Any

from auth_service.client_auth import ASSERTION_TYPE
from auth_service.grants import GRANT_TYPES, TOKEN_TYPE_HINTS
from auth_service.oauth import FORM_MEDIA_TYPE, MAX_FIELDS, MAX_VALUE_CHARS
from service_kit.openapi import (
    GATEWAY_RATE_LIMITED,
    RETRY_AFTER,
    RETRY_AFTER_SECONDS,
    WWW_AUTHENTICATE,
    problem_content,
)

_OAUTH_ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {
                "error": {
                    "type": "string",
                    "description": "`invalid_request`, `invalid_client`, `invalid_grant`, "
                    "`unauthorized_client`, `unsupported_grant_type`, `invalid_scope` or "
                    "`invalid_target`",
                },
                "error_description": {"type": "string"},
            },
        }
    }
}
_NO_STORE = {
    "Cache-Control": {"required": True, "schema": {"type": "string", "const": "no-store"}},
}


def _oauth_error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "description": f"RFC 6749 §5.2: {description}",
        "content": _OAUTH_ERROR_BODY,
        "headers": {**_NO_STORE, **(headers or {})},
    }


_INVALID_CLIENT = _oauth_error(
    "`invalid_client`: the client is not registered, or did not prove it is itself (a "
    "confidential client's secret or assertion missing or wrong, a public client sending one, "
    "two methods at once); only an authenticated confidential client may introspect",
    {
        WWW_AUTHENTICATE: {
            "description": "the Basic challenge, when the client used HTTP Basic",
            "required": False,
            "schema": {"type": "string", "pattern": "^Basic "},
        }
    },
)
_CLIENT_THROTTLED = _oauth_error(
    "`invalid_client`: too many failed client authentications from this address",
    {RETRY_AFTER: RETRY_AFTER_SECONDS},
)
_BODY_TOO_LARGE = {
    "description": "The form is over 16 KiB (RFC 6749 `invalid_request`), or the body over the "
    "gateway's limit (a problem)",
    "content": {**_OAUTH_ERROR_BODY, **problem_content()},
}

# Any value: no control characters but tab. An empty one counts as absent (RFC 6749 §3.1).
_TEXT = {"type": "string", "maxLength": MAX_VALUE_CHARS, "pattern": r"^[^\x00-\x08\x0a-\x1f\x7f]*$"}
_REQUIRED_TEXT = {**_TEXT, "minLength": 1}
_CLIENT_ID = {
    "type": "string",
    "pattern": r"^[\x20-\x7e]{0,64}$",
    "description": "the client's id (none: DEFAULT_CLIENT_ID); or the HTTP Basic user name",
}
# How a client authenticates in the form (`client_auth`); one method per request.
_CLIENT_AUTHENTICATION = {
    "client_id": _CLIENT_ID,
    "client_secret": {
        **_TEXT,
        "format": "password",
        "description": "client_secret_post (client_secret_basic sends it as HTTP Basic)",
    },
    "client_assertion_type": {"type": "string", "const": ASSERTION_TYPE},
    "client_assertion": {
        **_TEXT,
        "description": "private_key_jwt (RFC 7523): a JWT signed with a key of the client's",
    },
}
# RFC 6749 §3.3 scope-token
_SCOPE_WORD = r"[\x21\x23-\x5b\x5d-\x7e]+"


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    # Unknown parameters are ignored (RFC 6749 §3.1), but none may come twice.
    schema = {
        "type": "object",
        "properties": {**properties, **_CLIENT_AUTHENTICATION},
        "required": required,
        "additionalProperties": _TEXT,
        "maxProperties": MAX_FIELDS,
        # One client authentication method per request (two: `invalid_request`).
        "not": {"required": ["client_secret", "client_assertion"]},
    }
    return {"requestBody": {"required": True, "content": {FORM_MEDIA_TYPE: {"schema": schema}}}}


TOKEN_FORM = _form(
    {
        "grant_type": {"type": "string", "enum": list(GRANT_TYPES)},
        "username": {**_TEXT, "description": "email or username (password grant)"},
        "password": {**_TEXT, "format": "password", "description": "password grant"},
        "refresh_token": {**_TEXT, "description": "refresh_token grant"},
        "code": {**_TEXT, "description": "authorization_code grant: the code from the redirect"},
        "redirect_uri": {
            **_TEXT,
            "description": "authorization_code grant: the redirect URI the code was sent to",
        },
        "code_verifier": {
            **_TEXT,
            "description": "authorization_code grant: the PKCE verifier (RFC 7636)",
        },
        "scope": {
            "type": "string",
            "pattern": f"^({_SCOPE_WORD}( {_SCOPE_WORD})*)?$",
            "maxLength": MAX_VALUE_CHARS,
            "description": "space-separated, among the client's",
        },
        "resource": {**_TEXT, "description": "RFC 8707: the token's audience, among the client's"},
    },
    ["grant_type"],
)
TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "RFC 6749 §5.1: the access token, and its refresh token (none for "
        "client_credentials); for authorization_code with scope `openid`, an ID token",
        "headers": _NO_STORE,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in", "scope"],
                    "properties": {
                        "access_token": {"type": "string", "description": "RFC 9068 JWT"},
                        "token_type": {"type": "string", "const": "Bearer"},
                        "expires_in": {"type": "integer", "minimum": 1},
                        "refresh_token": {"type": "string"},
                        "scope": {"type": "string"},
                        "id_token": {
                            "type": "string",
                            "description": "OpenID Connect ID token: a JWT, header `typ` `JWT`",
                        },
                    },
                }
            }
        },
    },
    400: _oauth_error(
        "`invalid_request`, `invalid_grant` (wrong credentials, a spent refresh token, a "
        "spent, expired or mismatched authorization code), "
        "`unauthorized_client` (a grant the client is not registered for), "
        "`unsupported_grant_type`, `invalid_scope` or `invalid_target` (RFC 8707)"
    ),
    401: _INVALID_CLIENT,
    413: _BODY_TOO_LARGE,
    429: {
        "description": "Too many failed sign-ins for the account or the address "
        "(`invalid_grant`), too many failed client authentications (`invalid_client`), or the "
        "gateway's per-address rate limit (plain text)",
        "headers": {RETRY_AFTER: RETRY_AFTER_SECONDS},
        "content": {**_OAUTH_ERROR_BODY, **GATEWAY_RATE_LIMITED["content"]},
    },
    503: _oauth_error(
        "`invalid_request`: no signing key is loaded yet, or the service is at capacity "
        "(`MAX_CONCURRENT_REQUESTS`, or the password checks' queue is full)",
        {RETRY_AFTER: RETRY_AFTER_SECONDS},
    ),
}

_AT_CAPACITY = _oauth_error(
    "`invalid_request`: the service is at capacity (`MAX_CONCURRENT_REQUESTS`)",
    {RETRY_AFTER: RETRY_AFTER_SECONDS},
)

REVOKE_FORM = _form(
    {
        "token": {**_REQUIRED_TEXT, "description": "a refresh token"},
        "token_type_hint": {
            **_TEXT,
            "description": f"{' or '.join(TOKEN_TYPE_HINTS)}; any other is ignored",
        },
    },
    ["token"],
)
REVOKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Revoked, or nothing to revoke (RFC 7009 §2.2); no body",
        "headers": _NO_STORE,
    },
    400: _oauth_error("`invalid_request`"),
    401: _INVALID_CLIENT,
    413: _BODY_TOO_LARGE,
    429: _CLIENT_THROTTLED,
    503: _AT_CAPACITY,
}

INTROSPECT_FORM = _form(
    {
        "token": {**_REQUIRED_TEXT, "description": "an access token"},
        "token_type_hint": {**_TEXT, "description": "ignored (RFC 7662 §2.1 allows it)"},
    },
    ["token"],
)
INTROSPECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "RFC 7662 §2.2: `active`; for a live access token, its claims too",
        "headers": _NO_STORE,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["active"],
                    "properties": {
                        "active": {"type": "boolean"},
                        "token_type": {"type": "string", "const": "Bearer"},
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
    },
    400: _oauth_error("`invalid_request`"),
    401: _INVALID_CLIENT,
    413: _BODY_TOO_LARGE,
    429: _CLIENT_THROTTLED,
    503: _AT_CAPACITY,
}
