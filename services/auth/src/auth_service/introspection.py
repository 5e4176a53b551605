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

from sqlalchemy import bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from auth_service import client_auth
from auth_service.client_auth import PresentedCredentials, lookup_statement
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.models import Account, Client, SignInSession
from auth_service.oauth import require
from auth_service.tokens import InvalidAccessTokenError, access_token_claims

INTROSPECT_PATH = "/auth/introspect"
INACTIVE: dict[str, Any] = {"active": False}

# Whether the token is still backed, read in the same statement as the caller's
# authentication: one statement per introspection.
_SESSION_LIVE = exists(
    select(SignInSession.id)
    .join(Account, Account.id == SignInSession.account_id)
    .where(
        SignInSession.id == bindparam("session_id"),
        SignInSession.account_id == bindparam("account_id"),
        SignInSession.revoked_at.is_(None),
        SignInSession.expires_at > bindparam("now"),
        Account.disabled.is_(False),
    )
)
_subject_client = aliased(Client)  # not the caller's row, which the lookup joins
_CLIENT_REGISTERED = exists(
    select(_subject_client.id).where(_subject_client.id == bindparam("subject"))
)
_LOOKUPS = {
    "session": lookup_statement(_SESSION_LIVE.label("live")),
    "client": lookup_statement(_CLIENT_REGISTERED.label("live")),
    None: lookup_statement(),
}


def _backing(claims: dict[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    """What keeps a token live (its session, or its client) and the parameters to ask."""
    if claims is None:
        return None, {}
    session = claims.get("sid")
    if session is None:
        if claims["sub"] != claims["client_id"]:
            return None, {}  # neither a person's nor a service's own token
        return "client", {"subject": claims["sub"]}
    try:
        return "session", {
            "account_id": uuid.UUID(claims["sub"]),
            "session_id": uuid.UUID(session),
        }
    except ValueError:
        return None, {}


async def introspect(
    db: AsyncSession,
    issuance: Issuance,
    form: dict[str, str],
    credentials: PresentedCredentials,
    client_address: str | None,
) -> dict[str, Any]:
    """The introspection endpoint: authenticate the caller, then describe `token`.

    The token is checked first (no database), so that the caller's authentication and
    whether the token is still backed are one read. Nothing is written but a failed
    authentication's count, or an accepted client assertion's `jti`.
    """
    now = utcnow()
    issuer = issuance.issuer.issuer
    token = require(form, "token")  # token_type_hint may be ignored (RFC 7662 §2.1)
    try:
        claims: dict[str, Any] | None = access_token_claims(
            token, issuance.keys, issuer, audience=None
        )
    except InvalidAccessTokenError:
        claims = None
    # The clock leeway is for verifiers that cannot ask; here, an expired token is inactive.
    if claims is not None and claims["exp"] <= now.timestamp():
        claims = None
    backing, parameters = _backing(claims)
    _, row = await client_auth.authenticate_confidential(
        db,
        issuance.clients,
        credentials,
        endpoint=f"{issuer}{INTROSPECT_PATH}",
        client_address=client_address,
        now=now,
        lookup=_LOOKUPS[backing],
        parameters=parameters,
        read_only=True,
    )
    if backing is None or not row["live"]:
        return INACTIVE
    return {"active": True, **(claims or {}), "token_type": "Bearer"}
