"""Token introspection (RFC 7662), for authenticated confidential clients only.

A live access token of ours is `{"active": true, ...its claims}`: its signature checks
against a published key, its `typ`, `iss` and `exp` hold (whatever its audience), and it
is still backed by something: a person's token by its session (neither revoked nor
expired) and an enabled account, a service's own token (`client_credentials`: `sub` is
its client id, no `sid`) by its client, still registered. Anything else, an expired or
revoked token, a refresh token, an ID token, garbage, is `{"active": false}` and nothing
more (RFC 7662 §2.2).
"""

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import client_auth, clients, sessions
from auth_service.client_auth import PresentedCredentials
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.oauth import require
from auth_service.tokens import InvalidAccessTokenError, access_token_claims

INTROSPECT_PATH = "/auth/introspect"
INACTIVE: dict[str, Any] = {"active": False}


async def introspect(
    db: AsyncSession,
    issuance: Issuance,
    form: dict[str, str],
    credentials: PresentedCredentials,
    client_address: str | None,
) -> dict[str, Any]:
    """The introspection endpoint: authenticate the caller, then describe `token`.

    Only reads, but an accepted client assertion's `jti` (committed as it is accepted).
    """
    now = utcnow()
    issuer = issuance.issuer.issuer
    await client_auth.authenticate(
        db,
        issuance.clients,
        credentials,
        endpoint=f"{issuer}{INTROSPECT_PATH}",
        client_address=client_address,
        now=now,
        confidential_only=True,
    )
    token = require(form, "token")  # token_type_hint may be ignored (RFC 7662 §2.1)
    try:
        claims = access_token_claims(token, issuance.keys, issuer, audience=None)
    except InvalidAccessTokenError:
        return INACTIVE
    # The clock leeway is for verifiers that cannot ask; here, an expired token is inactive.
    if claims["exp"] <= now.timestamp():
        return INACTIVE
    subject, session = claims["sub"], claims.get("sid")
    if session is not None:
        try:
            account_id, session_id = uuid.UUID(subject), uuid.UUID(session)
        except ValueError:
            return INACTIVE
        live = await sessions.session_is_live(db, account_id, session_id, now)
    else:
        live = subject == claims["client_id"] and await clients.is_registered(db, subject)
    if not live:
        return INACTIVE
    return {"active": True, **claims, "token_type": "Bearer"}
