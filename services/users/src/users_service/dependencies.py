"""Who may call what: the users service's own rules, on the platform's verified tokens.

Verification, the RFC 6750 answers and the role checks come from `auth_client`, as for any
service; this module says what the profile routes need.
"""

import uuid
from typing import Annotated

from fastapi import Depends

from auth_client import Principal
from auth_client.fastapi import AuthError, CurrentPrincipal, RequireRoles

ADMIN_ROLE = "admin"


async def current_account(principal: CurrentPrincipal) -> uuid.UUID:
    """The account the token speaks for; its `sub` must be an account id (a UUID)."""
    try:
        account = uuid.UUID(principal.subject)
    except ValueError:
        raise AuthError.invalid_token() from None
    if str(account) != principal.subject.lower():  # the canonical form only, as auth writes it
        raise AuthError.invalid_token()
    return account


# The caller's own account.
CurrentAccount = Annotated[uuid.UUID, Depends(current_account)]
Admin = Annotated[Principal, RequireRoles(ADMIN_ROLE)]
