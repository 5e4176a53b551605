"""Token revocation (RFC 7009): a client revokes a refresh token's whole session.

The client authenticates as at the token endpoint (a public client names itself, a
confidential one proves it is itself). Only its own sessions are revoked; an unknown
token, an access token or another client's session change nothing, and the answer is the
same 200 (RFC 7009 §2.2).
"""

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import client_auth, sessions
from auth_service.client_auth import PresentedCredentials
from auth_service.clock import utcnow
from auth_service.grants import Issuance
from auth_service.oauth import require

REVOKE_PATH = "/auth/revoke"
TOKEN_TYPE_HINTS = ("refresh_token", "access_token")


async def revoke(
    db: AsyncSession,
    issuance: Issuance,
    form: dict[str, str],
    credentials: PresentedCredentials,
    client_address: str | None,
) -> None:
    """The revocation endpoint: authenticate the client, revoke its session. Commits."""
    token = require(form, "token")
    now = utcnow()
    client = await client_auth.authenticate(
        db,
        issuance.clients,
        credentials,
        endpoint=f"{issuance.issuer.issuer}{REVOKE_PATH}",
        client_address=client_address,
        now=now,
    )
    # RFC 7009 §2.1: an unknown hint may be ignored, as if none was sent.
    if form.get("token_type_hint") == "access_token":
        return  # access tokens are not revoked one by one: they expire
    await sessions.revoke_by_token(
        db,
        token,
        client_id=client.id,
        now=now,
        client_address=client_address,
        or_unnamed=client.id == issuance.clients.default_client_id,
    )
