"""The token (RFC 6749) and revocation (RFC 7009) endpoints. Errors speak RFC 6749."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from auth_service import sessions
from auth_service.clock import utcnow
from auth_service.dependencies import ClientAddress, IssuanceDep
from auth_service.grants import GrantRequest, password_grant, refresh_grant
from auth_service.oauth import NO_STORE, OAuthError, client_id_from, read_form, require
from service_kit.db import DbSession

router = APIRouter(tags=["oauth"])

_OAUTH_ERROR = {
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
    # The form is parsed by hand (strictly), so its schema is declared for the docs here.
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


_TOKEN_FORM = _form_body(
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
_REVOKE_FORM = _form_body(
    {
        "token": {"type": "string"},
        "token_type_hint": {"type": "string", "enum": ["refresh_token", "access_token"]},
        "client_id": {"type": "string"},
    },
    ["token"],
)


@router.post(
    "/token",
    openapi_extra=_TOKEN_FORM,
    response_model=None,
    responses={
        200: {"description": "RFC 6749 §5.1 access token response"},
        400: _OAUTH_ERROR,
        401: _OAUTH_ERROR,
        429: {**_OAUTH_ERROR, "description": "throttled sign-in: `invalid_grant`, Retry-After"},
        503: {**_OAUTH_ERROR, "description": "no signing key loaded yet; Retry-After"},
    },
)
async def token(
    request: Request, db: DbSession, issuance: IssuanceDep, address: ClientAddress
) -> Response:
    """Issue tokens: grants `password` (username is the email or the username) and
    `refresh_token`. Public clients only (no secret); `client_id` optional."""
    form = await read_form(request)
    grant_type = require(form, "grant_type")
    grant = GrantRequest(client_id_from(request, form), form.get("scope"), address)
    if grant_type == "password":
        body = await password_grant(
            db,
            issuance,
            grant,
            username=require(form, "username"),
            password=require(form, "password"),
        )
    elif grant_type == "refresh_token":
        body = await refresh_grant(
            db, issuance, grant, refresh_token=require(form, "refresh_token")
        )
    else:
        raise OAuthError("unsupported_grant_type", "Supported: password, refresh_token.")
    return JSONResponse(body, headers=NO_STORE)


@router.post(
    "/revoke",
    openapi_extra=_REVOKE_FORM,
    response_model=None,
    responses={200: {"description": "Revoked, or nothing to revoke"}, 400: _OAUTH_ERROR},
)
async def revoke(request: Request, db: DbSession, address: ClientAddress) -> Response:
    """RFC 7009: revoke a refresh token's whole session. 200 whether or not there was one
    (an access token, an unknown token or another client's session changes nothing)."""
    form = await read_form(request)
    token_value = require(form, "token")
    client_id = client_id_from(request, form)
    hint = form.get("token_type_hint")
    if hint is not None and hint not in ("refresh_token", "access_token"):
        # RFC 7009 §2.1: the hint may be ignored; an unknown one changes nothing either.
        hint = None
    if hint != "access_token":
        await sessions.revoke_by_token(
            db, token_value, client_id=client_id, now=utcnow(), client_address=address
        )
    return Response(status_code=200, headers=NO_STORE)
