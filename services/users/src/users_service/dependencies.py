"""Who may call what: the users service's own rules, on the platform's verified tokens.

Verification, the RFC 6750 answers and the scope and role checks come from `auth_client`, as
for any service; this module says what the profile routes need. A person acts on their own
profile; a service (a `client_credentials` token) has no profile, and reads others' only with
the `users:read` scope.
"""

import uuid
from typing import Annotated

from fastapi import Depends, Request

from auth_client import Principal
from auth_client.fastapi import AuthError, CurrentPerson, RequireScopes
from users_service.profile_cache import ProfileCache

USERS_READ = "users:read"
EVENTS_PUBLISH = "events:publish"
ADMIN_ROLE = "admin"


def is_person(principal: Principal) -> bool:
    """A person's token: signed in to an account, as opposed to a service's own token."""
    return principal.is_person


def is_admin(principal: Principal) -> bool:
    """A token whose `roles` claim holds the admin role."""
    return ADMIN_ROLE in principal.roles


async def current_account(person: CurrentPerson) -> uuid.UUID:
    """The account a person's token speaks for; its `sub` must be an account id (a UUID)."""
    try:
        account = uuid.UUID(person.subject)
    except ValueError:
        raise AuthError.invalid_token() from None
    if str(account) != person.subject.lower():  # the canonical form only, as auth writes it
        raise AuthError.invalid_token()
    return account


async def profile_cache(request: Request) -> ProfileCache:
    """This replica's cache of `GET /users/me` answers (made with the app)."""
    cache: ProfileCache = request.app.state.profile_cache
    return cache


ProfileCacheDep = Annotated[ProfileCache, Depends(profile_cache)]
# The caller's own account: a person's token only (403 for a service's).
CurrentAccount = Annotated[uuid.UUID, Depends(current_account)]
# Public profile fields: any person, or a service holding `users:read`.
ProfileReader = Annotated[Principal, RequireScopes(USERS_READ, unless=is_person)]
# Every profile: a token holding `users:read` (a service, say), or an admin.
ProfileLister = Annotated[Principal, RequireScopes(USERS_READ, unless=is_admin)]


async def event_publisher(
    principal: Annotated[Principal, RequireScopes(EVENTS_PUBLISH)],
) -> Principal:
    """The auth service's event publisher: a service's own token holding `events:publish`."""
    if not principal.is_service:
        raise AuthError.forbidden("This needs a service's own token, not a person's.")
    return principal


# Who may deliver events: the auth service's publisher (`events:publish`).
EventPublisher = Annotated[Principal, Depends(event_publisher)]
