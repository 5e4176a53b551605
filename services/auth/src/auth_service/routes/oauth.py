"""The token (RFC 6749) and revocation (RFC 7009) endpoints. Errors speak RFC 6749."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from auth_service import grants
from auth_service.dependencies import ClientAddress, IssuanceDep
from auth_service.grants import GrantRequest, password_grant, refresh_grant
from auth_service.oauth import NO_STORE, OAuthError, client_id_from, read_form, require
from auth_service.routes.oauth_openapi import (
    REVOKE_FORM,
    REVOKE_RESPONSES,
    TOKEN_FORM,
    TOKEN_RESPONSES,
)
from service_kit.db import DbSession

router = APIRouter(tags=["oauth"])


@router.post("/token", openapi_extra=TOKEN_FORM, response_model=None, responses=TOKEN_RESPONSES)
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
    openapi_extra=REVOKE_FORM,
    response_model=None,
    response_class=Response,  # no body, so the document lists none
    responses=REVOKE_RESPONSES,
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
        await grants.revoke(db, token_value, client_id=client_id, client_address=address)
    return Response(status_code=200, headers=NO_STORE)
