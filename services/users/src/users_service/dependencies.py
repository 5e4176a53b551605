"""What routes depend on: the caller's verified token, and roles it must hold.

`CurrentUser` and `RequireRole(...)` are the pattern every route (and every later service)
reuses; the challenges follow RFC 6750 §3.
"""

from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from users_service.tokens import AccessToken, InvalidAccessTokenError, TokenVerifier

BEARER_CHALLENGE = "Bearer"
INVALID_BEARER_CHALLENGE = 'Bearer error="invalid_token"'
# One body for every invalid token, whatever the cause: the cause goes to the log only.
INVALID_CREDENTIALS_DETAIL = "The access token is invalid or expired."
MISSING_CREDENTIALS_DETAIL = "An access token is required (Authorization: Bearer …)."

log = structlog.stdlib.get_logger(__name__)
bearer_scheme = HTTPBearer(
    auto_error=False, description="An access token from the auth service's token endpoint."
)


async def get_token_verifier(request: Request) -> TokenVerifier:
    # `async`, so FastAPI calls it inline rather than in its thread pool, on every request.
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    verifier: Annotated[TokenVerifier, Depends(get_token_verifier)],
) -> AccessToken:
    """The verified access token of the request; 401 with the RFC 6750 challenge otherwise."""
    if credentials is None:
        raise HTTPException(
            401, MISSING_CREDENTIALS_DETAIL, headers={"WWW-Authenticate": BEARER_CHALLENGE}
        )
    if len(request.headers.getlist("authorization")) > 1:
        log.info("access_token_rejected", reason="several Authorization headers")
        raise _invalid_token()
    try:
        return await verifier.verify(credentials.credentials)
    except InvalidAccessTokenError as exc:
        log.info("access_token_rejected", reason=str(exc))
        raise _invalid_token() from None


def _invalid_token() -> HTTPException:
    return HTTPException(
        401, INVALID_CREDENTIALS_DETAIL, headers={"WWW-Authenticate": INVALID_BEARER_CHALLENGE}
    )


CurrentUser = Annotated[AccessToken, Depends(current_user)]


class RequireRole:
    """A dependency admitting only callers whose token lists `role` in its `roles` claim."""

    def __init__(self, role: str) -> None:
        self.role = role

    async def __call__(self, user: CurrentUser) -> AccessToken:
        if self.role not in user.roles:
            raise HTTPException(403, f"This needs the '{self.role}' role.")
        return user


Admin = Annotated[AccessToken, Depends(RequireRole("admin"))]
