"""What routes depend on, as `Annotated` aliases: the grants' context and the caller.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in the thread pool,
a thread hop per request for what is an attribute read.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from auth_service.accounts import PasswordRules
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.introspection import Introspector
from auth_service.mail import MailedLinks
from auth_service.models import Account
from auth_service.sign_in_sessions import live_session_account
from auth_service.tokens import AccessTokenClaims, InvalidAccessTokenError, verify_access_token
from service_kit.db import DbSession

# Relative, so Swagger UI's Authorize button works through the gateway and directly alike.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


async def get_issuance(request: Request) -> Issuance:
    issuance: Issuance = request.app.state.issuance
    return issuance


async def get_introspector(request: Request) -> Introspector:
    introspector: Introspector = request.app.state.introspector
    return introspector


async def get_password_rules(request: Request) -> PasswordRules:
    rules: PasswordRules = request.app.state.password_rules
    return rules


async def get_mailed_links(request: Request) -> MailedLinks:
    links: MailedLinks = request.app.state.mailed_links
    return links


async def client_address(request: Request) -> str | None:
    """The client's address: service_kit's ClientAddressMiddleware put it in the request,
    from X-Forwarded-For only as far as TRUSTED_PROXIES vouch for it."""
    return request.client.host if request.client else None


@dataclass(frozen=True)
class Caller:
    account: Account
    claims: AccessTokenClaims


def _unauthorized(error: str | None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    detail = "An access token is required." if error is None else "The access token is invalid."
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


async def current_caller(
    db: DbSession,
    issuance: Annotated[Issuance, Depends(get_issuance)],
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> Caller:
    """The signed-in account, from an access token (RFC 6750): a valid signature is not
    enough, its session (`sid`) must still be live and its account enabled, so that a
    revocation (logout, password change, refresh-token reuse, disable) takes effect on
    auth's own endpoints at once, not when the token expires."""
    if token is None:
        raise _unauthorized(None)
    try:
        claims = verify_access_token(token, issuance.keys, issuance.issuer)
    except InvalidAccessTokenError:
        raise _unauthorized("invalid_token") from None
    account = await live_session_account(db, claims.account_id, claims.session_id, utcnow())
    if account is None:
        raise _unauthorized("invalid_token")
    return Caller(account, claims)


ADMIN_ROLE = "admin"


async def current_admin(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    """The signed-in account, when it holds the `admin` role now (the stored roles, not the
    token's: a role revoked a moment ago no longer opens the admin API)."""
    if ADMIN_ROLE not in caller.account.roles:
        raise HTTPException(403, "The admin role is required.")
    return caller


IssuanceDep = Annotated[Issuance, Depends(get_issuance)]
IntrospectorDep = Annotated[Introspector, Depends(get_introspector)]
MailedLinksDep = Annotated[MailedLinks, Depends(get_mailed_links)]
PasswordRulesDep = Annotated[PasswordRules, Depends(get_password_rules)]
ClientAddress = Annotated[str | None, Depends(client_address)]
CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentAdmin = Annotated[Caller, Depends(current_admin)]
