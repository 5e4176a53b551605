"""The token (RFC 6749), revocation (RFC 7009) and introspection (RFC 7662) endpoints.

Errors speak RFC 6749 §5.2. Each route parses the form and the client's credentials and
calls one operation; the operations authenticate the client (`client_auth`) and commit.
"""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from auth_service import client_auth, grants, introspection
from auth_service.dependencies import (
    ClientAddress,
    IntrospectorDep,
    IssuanceDep,
    client_address,
)
from auth_service.oauth import NO_STORE, read_form
from auth_service.routes.oauth_openapi import (
    INTROSPECT_FORM,
    INTROSPECT_RESPONSES,
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
    "/revoke",
    openapi_extra=REVOKE_FORM,
    response_model=None,
    response_class=Response,  # no body, so the document lists none
    responses=REVOKE_RESPONSES,
)
async def revoke(
    request: Request, db: DbSession, issuance: IssuanceDep, address: ClientAddress
) -> Response:
    """RFC 7009: revoke a refresh token's whole session. 200 whether or not there was one
    (an access token, an unknown token or another client's session changes nothing); the
    client authenticates as at the token endpoint."""
    form = await read_form(request)
    credentials = client_auth.presented(request.headers.get("authorization"), form)
    await grants.revoke(db, issuance, form, credentials, address)
    return Response(status_code=200, headers=NO_STORE)


@router.post(
    "/introspect",
    openapi_extra=INTROSPECT_FORM,
    response_model=None,
    responses=INTROSPECT_RESPONSES,
)
async def introspect(request: Request, introspector: IntrospectorDep) -> Response:
    """RFC 7662: whether an access token is live, and its claims. For authenticated
    confidential clients only (a public or unauthenticated caller gets 401
    `invalid_client`); `{"active": false}` for anything but a live access token."""
    form = await read_form(request)
    credentials = client_auth.presented(request.headers.get("authorization"), form)
    # What `ClientAddress` gives, without a second dependency on the hottest endpoint.
    address = await client_address(request)
    body = await introspection.introspect(introspector, form, credentials, address)
    return JSONResponse(body, headers=NO_STORE)
