"""Browser and app sign-in (OpenID Connect): the authorization endpoint and its hosted
sign-in page, userinfo, and RP-Initiated Logout. Each route parses, calls one operation of
`browser_sign_in`, and shapes the answer (a page, or a 303 to the client)."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from auth_service import browser_sign_in, csrf
from auth_service.authorization import (
    AuthorizationPageError,
    AuthorizationRedirectError,
    single_values,
)
from auth_service.browser_sign_in import Redirect, ShowPage, SignInContext
from auth_service.dependencies import ClientAddress, CurrentCaller
from auth_service.id_tokens import identity_claims
from auth_service.oauth import NO_STORE, OAuthError, read_form
from auth_service.pages import message_page, render
from auth_service.routes.sign_in_openapi import (
    AUTHORIZE_GET,
    AUTHORIZE_POST,
    LOGOUT,
    USERINFO_RESPONSES,
)
from service_kit.db import DbSession

router = APIRouter(tags=["sign-in"])
REFUSED_TITLE = "This sign-in request cannot be completed"


async def get_sign_in_context(request: Request) -> SignInContext:
    context: SignInContext = request.app.state.sign_in
    return context


SignInContextDep = Annotated[SignInContext, Depends(get_sign_in_context)]


@router.get("/authorize", response_class=HTMLResponse, **AUTHORIZE_GET)
async def authorize(request: Request, db: DbSession, context: SignInContextDep) -> Response:
    """The authorization endpoint (RFC 6749 §4.1, RFC 7636 S256, OpenID Connect Core).
    A browser already signed in goes straight back to the client with a code (unless
    `prompt=login`); otherwise the sign-in page is shown (`prompt=none`: `login_required`)."""
    parameters, repeated = single_values(request.query_params.multi_items())
    cookie = request.cookies.get(context.cookie.name)
    try:
        outcome = await browser_sign_in.authorize(db, context, parameters, repeated, cookie)
    except AuthorizationPageError as exc:
        return message_page(REFUSED_TITLE, str(exc), 400)
    except AuthorizationRedirectError as exc:
        return _redirect(Redirect(exc.location(context.issuance.issuer.issuer)), context)
    return _answer(outcome, request, context, username="")


@router.post("/authorize", response_class=HTMLResponse, **AUTHORIZE_POST)
async def sign_in(
    request: Request, db: DbSession, context: SignInContextDep, address: ClientAddress
) -> Response:
    """The sign-in page's form: the authorization request again (hidden fields), the CSRF
    token, `username` (email or username) and `password`. The password check and its
    throttle are the token endpoint's; wrong and unknown answer alike."""
    try:
        form = await read_form(request)
    except OAuthError as exc:
        return message_page(REFUSED_TITLE, exc.description, 400)
    cookie = request.cookies.get(context.cookie.name)
    csrf_cookie = request.cookies.get(context.csrf.cookie_name)
    try:
        if not context.csrf.valid(csrf_cookie, form.get(csrf.FIELD)):
            outcome: ShowPage | Redirect = await browser_sign_in.form_expired(db, context, form)
        else:
            outcome = await browser_sign_in.sign_in(
                db, context, form, cookie=cookie, client_address=address
            )
    except AuthorizationPageError as exc:
        return message_page(REFUSED_TITLE, str(exc), 400)
    except AuthorizationRedirectError as exc:
        return _redirect(Redirect(exc.location(context.issuance.issuer.issuer)), context)
    return _answer(outcome, request, context, username=form.get("username", ""))


def _answer(
    outcome: ShowPage | Redirect, request: Request, context: SignInContext, *, username: str
) -> Response:
    if isinstance(outcome, Redirect):
        return _redirect(outcome, context)
    csrf_cookie = context.csrf.cookie(request.cookies.get(context.csrf.cookie_name))
    headers = {"Retry-After": str(outcome.retry_after)} if outcome.retry_after else None
    response = render(
        "sign_in.html",
        status=outcome.status,
        form_target=outcome.request.target.redirect_uri,
        headers=headers,
        title="Sign in",
        client_id=outcome.request.client.id,
        action="authorize",
        error=outcome.error,
        username=username,
        hidden={**outcome.request.hidden_fields(), csrf.FIELD: context.csrf.token(csrf_cookie)},
    )
    context.cookie.set(response, context.csrf.cookie_name, csrf_cookie, max_age=None)
    return response


def _redirect(outcome: Redirect, context: SignInContext) -> Response:
    response = RedirectResponse(outcome.location, status_code=303, headers=NO_STORE)
    if outcome.cookie:
        max_age = int(context.cookie.ttl.total_seconds())
        context.cookie.set(response, context.cookie.name, outcome.cookie, max_age=max_age)
    elif outcome.cookie == "":
        context.cookie.clear(response, context.cookie.name)
    return response


@router.get("/userinfo", response_model=None, responses=USERINFO_RESPONSES)
async def userinfo(caller: CurrentCaller) -> JSONResponse:
    """OpenID Connect Core §5.3: what the access token's scopes let the client know about
    the person: `sub` (scope `openid`, required); `email` and `email_verified` (`email`);
    `preferred_username` (`profile`)."""
    if "openid" not in caller.claims.scope.split():
        raise HTTPException(
            403,
            "The access token lacks the openid scope.",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'},
        )
    return JSONResponse(identity_claims(caller.account, caller.claims.scope), headers=NO_STORE)


@router.get("/logout", response_class=HTMLResponse, **LOGOUT)
async def logout(
    request: Request, db: DbSession, context: SignInContextDep, address: ClientAddress
) -> Response:
    """OpenID Connect RP-Initiated Logout 1.0: ends this browser's sign-in session; with an
    `id_token_hint` (expired ones accepted) it also revokes that client's session, and
    returns to `post_logout_redirect_uri` when it is one of that client's redirect URIs."""
    parameters, _ = single_values(request.query_params.multi_items())
    cookie = request.cookies.get(context.cookie.name)
    outcome = await browser_sign_in.log_out(db, context, parameters, cookie, address)
    if outcome.location is not None:
        return _redirect(Redirect(outcome.location, cookie=""), context)
    response = message_page("Signed out", "You are signed out. You may close this window.")
    context.cookie.clear(response, context.cookie.name)
    return response
