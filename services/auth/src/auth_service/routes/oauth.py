"""The token (RFC 6749), revocation (RFC 7009) and introspection (RFC 7662) endpoints.

Errors speak RFC 6749 §5.2. Each route parses the form and the client's credentials and
calls one operation; the operations authenticate the client (`client_auth`).
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from auth_service import client_auth, grants, introspection, revocation
from auth_service.client_auth import ASSERTION_TYPE
from auth_service.db import Session
from auth_service.dependencies import ClientAddress, IssuanceDep
from auth_service.oauth import NO_STORE, read_form

router = APIRouter(tags=["oauth"])


def _oauth_error(description: str, codes: list[str]) -> dict[str, Any]:
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


_INVALID_CLIENT = _oauth_error(
    "client authentication failed; `WWW-Authenticate: Basic` when Basic was used",
    ["invalid_client"],
)
_THROTTLED_CLIENT = {
    **_oauth_error("too many failed client authentications; Retry-After", ["invalid_client"]),
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}
_TOO_LARGE = _oauth_error("the body is over its limit", ["invalid_request"])

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


_TOKEN_FORM = _form_body(
    {
        "grant_type": {"type": "string", "enum": list(grants.GRANT_TYPES)},
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
_REVOKE_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": list(revocation.TOKEN_TYPE_HINTS)},
    },
    ["token"],
)
_INTROSPECT_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
    },
    ["token"],
)
_TOKEN_RESPONSE = {
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
_INTROSPECTION_RESPONSE = {
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


@router.post(
    grants.TOKEN_PATH.removeprefix("/auth"),
    openapi_extra=_TOKEN_FORM,
    response_model=None,
    responses={
        200: _TOKEN_RESPONSE,
        400: _oauth_error(
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
            **_oauth_error(
                "throttled: a sign-in (`invalid_grant`) or a client authentication "
                "(`invalid_client`); Retry-After",
                ["invalid_grant", "invalid_client"],
            ),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        503: _oauth_error("no signing key loaded yet; Retry-After", ["invalid_request"]),
    },
)
async def token(
    request: Request, db: Session, issuance: IssuanceDep, address: ClientAddress
) -> Response:
    """Issue tokens to a registered client, for the grants it was registered with:
    `password` (username is the email or the username), `refresh_token`, and
    `client_credentials` (a confidential client's own token: no refresh token).

    A public client names itself (`client_id`, or nothing for the default client); a
    confidential one authenticates with `client_secret_basic`, `client_secret_post` or
    `private_key_jwt`."""
    form = await read_form(request)
    credentials = client_auth.presented(request.headers.get("authorization"), form)
    body = await grants.token_request(db, issuance, form, credentials, address)
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    revocation.REVOKE_PATH.removeprefix("/auth"),
    openapi_extra=_REVOKE_FORM,
    response_model=None,
    responses={
        200: {"description": "Revoked, or nothing to revoke"},
        400: _oauth_error("bad request", ["invalid_request"]),
        401: _INVALID_CLIENT,
        413: _TOO_LARGE,
        429: _THROTTLED_CLIENT,
    },
)
async def revoke(
    request: Request, db: Session, issuance: IssuanceDep, address: ClientAddress
) -> Response:
    """RFC 7009: revoke a refresh token's whole session. 200 whether or not there was one
    (an access token, an unknown token or another client's session changes nothing); the
    client authenticates as at the token endpoint."""
    form = await read_form(request)
    credentials = client_auth.presented(request.headers.get("authorization"), form)
    await revocation.revoke(db, issuance, form, credentials, address)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    introspection.INTROSPECT_PATH.removeprefix("/auth"),
    openapi_extra=_INTROSPECT_FORM,
    response_model=None,
    responses={
        200: _INTROSPECTION_RESPONSE,
        400: _oauth_error("bad request", ["invalid_request"]),
        401: _INVALID_CLIENT,
        413: _TOO_LARGE,
        429: _THROTTLED_CLIENT,
    },
)
async def introspect(
    request: Request, db: Session, issuance: IssuanceDep, address: ClientAddress
) -> Response:
    """RFC 7662: whether an access token is live, and its claims. For authenticated
    confidential clients only (a public or unauthenticated caller gets 401
    `invalid_client`); `{"active": false}` for anything but a live access token."""
    form = await read_form(request)
    credentials = client_auth.presented(request.headers.get("authorization"), form)
    body = await introspection.introspect(db, issuance, form, credentials, address)
    return JSONResponse(body, headers=NO_STORE)
