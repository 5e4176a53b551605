"""FastAPI dependencies of a resource server: who is calling, and what the call needs.

- `CurrentPrincipal`: the principal of the request's verified access token.
- `CurrentPerson`: the same, and it must be a person's token (a service's own token is 403).
- `RequireScopes("a", "b")`: the token must hold every scope listed; the OpenAPI document
  lists them in the operation's security requirement.
- `RequireRoles("admin")`: the token's `roles` claim must hold every role listed.

The answers follow RFC 6750 §3: no token is 401 with a bare `WWW-Authenticate: Bearer`; a bad,
expired, revoked or foreign one is 401 with `Bearer error="invalid_token"` (one body whatever
the cause, which goes to the log only); a missing scope is 403 with
`Bearer error="insufficient_scope", scope="…"`; a missing role is 403. They are `AuthError`s
(an `HTTPException`), answered as RFC 9457 problem details by `install_problem_handler(app)`
or by whatever handler the app already has for `HTTPException`.

The app keeps its `TokenVerifier` at `app.state.token_verifier` (set it in the lifespan).
"""

import logging
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Annotated, Any, Self

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from auth_client.principal import Principal
from auth_client.tokens import InvalidAccessTokenError, TokenVerifier

VERIFIER_STATE_NAME = "token_verifier"
PROBLEM_MEDIA_TYPE = "application/problem+json"
# One body for every invalid token, whatever the cause: the cause goes to the log only.
INVALID_CREDENTIALS_DETAIL = "The access token is invalid or expired."
MISSING_CREDENTIALS_DETAIL = "An access token is required (Authorization: Bearer …)."
# RFC 6749 §3.3: a scope token is printable ASCII but for space, `"` and `\`.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

log = logging.getLogger(__name__)
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An access token (RFC 9068) from the platform's token endpoint.",
)


class AuthError(HTTPException):
    """A 401 or 403 with its RFC 6750 challenge; `error` is the challenge's code, if any."""

    def __init__(
        self, status_code: int, detail: str, *, error: str | None, challenge: str | None
    ) -> None:
        headers = {"WWW-Authenticate": challenge} if challenge else None
        super().__init__(status_code, detail, headers=headers)
        self.error = error

    @classmethod
    def missing_token(cls) -> Self:
        """401 without an error code: the request carried no bearer token (RFC 6750 §3.1)."""
        return cls(401, MISSING_CREDENTIALS_DETAIL, error=None, challenge="Bearer")

    @classmethod
    def invalid_token(cls) -> Self:
        """401 `invalid_token`: bad, expired, revoked or meant for someone else."""
        challenge = 'Bearer error="invalid_token"'
        return cls(401, INVALID_CREDENTIALS_DETAIL, error="invalid_token", challenge=challenge)

    @classmethod
    def insufficient_scope(cls, scopes: Iterable[str], detail: str | None = None) -> Self:
        """403 `insufficient_scope`, naming the scopes the request needs."""
        needed = " ".join(scopes)
        challenge = f'Bearer error="insufficient_scope", scope="{needed}"'
        detail = detail or f"This needs the scope '{needed}'."
        return cls(403, detail, error="insufficient_scope", challenge=challenge)

    @classmethod
    def forbidden(cls, detail: str) -> Self:
        """403 for a good token that may not do this (a missing role, say)."""
        return cls(403, detail, error=None, challenge=None)


async def get_token_verifier(request: Request) -> TokenVerifier:
    """The app's verifier, from `app.state.token_verifier`."""
    # `async`, so FastAPI calls it inline rather than in its thread pool, on every request.
    verifier = getattr(request.app.state, VERIFIER_STATE_NAME, None)
    if not isinstance(verifier, TokenVerifier):
        raise RuntimeError("no TokenVerifier at app.state.token_verifier: set it in the lifespan")
    return verifier


async def verified_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    verifier: Annotated[TokenVerifier, Depends(get_token_verifier)],
) -> Principal:
    """The request's verified token, scopes unchecked; 401 with the RFC 6750 challenge otherwise."""
    if credentials is None:
        raise AuthError.missing_token()
    if len(request.headers.getlist("authorization")) > 1:
        log.info("access_token_rejected", extra={"reason": "several Authorization headers"})
        raise AuthError.invalid_token()
    try:
        return await verifier.verify(credentials.credentials)
    except InvalidAccessTokenError as exc:
        log.info("access_token_rejected", extra={"reason": str(exc)})
        raise AuthError.invalid_token() from None


async def current_principal(
    security_scopes: SecurityScopes,
    principal: Annotated[Principal, Depends(verified_principal)],
) -> Principal:
    """The verified principal, holding every scope declared with `Security(..., scopes=...)`."""
    _check_scopes(principal, security_scopes.scopes)
    return principal


async def current_person(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The verified principal, which must be a person: 403 for a service's own token."""
    if principal.is_service:
        raise AuthError.forbidden("This needs a person's access token, not a service's.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentPerson = Annotated[Principal, Depends(current_person)]


def _check_scopes(principal: Principal, scopes: Iterable[str]) -> None:
    needed = list(dict.fromkeys(scopes))
    if not principal.scopes.issuperset(needed):
        raise AuthError.insufficient_scope(needed)


class _ScopeRequirement:
    def __init__(self, unless: Callable[[Principal], bool] | None) -> None:
        self.unless = unless

    async def __call__(
        self,
        security_scopes: SecurityScopes,
        principal: Annotated[Principal, Depends(verified_principal)],
    ) -> Principal:
        if self.unless is None or not self.unless(principal):
            _check_scopes(principal, security_scopes.scopes)
        return principal


class _RoleRequirement:
    def __init__(self, roles: tuple[str, ...]) -> None:
        self.roles = roles

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        missing = [role for role in self.roles if role not in principal.roles]
        if missing:
            raise AuthError.forbidden(f"This needs the '{missing[0]}' role.")
        return principal


def RequireScopes(  # noqa: N802 - used like FastAPI's own Depends and Security
    *scopes: str, unless: Callable[[Principal], bool] | None = None
) -> Any:
    """A dependency admitting tokens that hold every scope in `scopes` (403 otherwise).

    Use it as `Annotated[Principal, RequireScopes("a")]` or in a route's `dependencies`.
    `unless(principal)`, when given and true, admits a token without the scopes (say, a
    person's token where only services need a scope); the OpenAPI document lists the scopes.
    """
    if not scopes or not all(_SCOPE_TOKEN.fullmatch(scope) for scope in scopes):
        raise ValueError(f"not a list of scope names: {scopes!r}")
    return Security(_ScopeRequirement(unless), scopes=list(scopes))


def RequireRoles(*roles: str) -> Any:  # noqa: N802 - used like FastAPI's own Depends
    """A dependency admitting tokens whose `roles` claim holds every role in `roles` (403)."""
    if not roles or not all(roles):
        raise ValueError(f"not a list of role names: {roles!r}")
    return Depends(_RoleRequirement(roles))


async def _problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    body = {
        "type": "about:blank",
        "title": HTTPStatus(exc.status_code).phrase,
        "status": exc.status_code,
        "detail": exc.detail,
    }
    return JSONResponse(body, exc.status_code, headers=exc.headers, media_type=PROBLEM_MEDIA_TYPE)


def install_problem_handler(app: FastAPI) -> None:
    """Answer this module's 401s and 403s as RFC 9457 problem details (`application/problem+json`).

    Not needed in an app whose handler for `HTTPException` already answers problem details.
    """
    app.add_exception_handler(AuthError, _problem)
