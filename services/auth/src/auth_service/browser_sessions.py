"""The hosted sign-in page's sessions: who is signed in to this browser, so that a second
authorization request skips the page (OpenID Connect's "authentication session").

Each is a `session_families` row of kind `browser` (revocable, listed with the account's
other sessions), named by an opaque random cookie of which only the SHA-256 is stored. It
issues authorization codes, never tokens; its `created_at` is the `auth_time` they carry.

The cookie is HttpOnly and SameSite=Lax (sent on the top-level navigation back from a
relying party, not on cross-site subrequests); over https it is Secure with the `__Host-`
prefix (this host only, path /, never set by a subdomain).

These functions write in the caller's transaction and never commit.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from auth_service.models import Account, SignInSession
from auth_service.sign_in_sessions import RevokedReason, hash_token, well_formed

BROWSER = "browser"


@dataclass(frozen=True)
class CookiePolicy:
    """The sign-in cookie's name and attributes, from PUBLIC_URL, and its session's lifetime."""

    name: str
    secure: bool
    ttl: timedelta

    @classmethod
    def for_public_url(cls, public_url: str, ttl: timedelta, base_name: str) -> "CookiePolicy":
        secure = public_url.lower().startswith("https://")
        return cls(f"__Host-{base_name}" if secure else base_name, secure, ttl)

    def set(self, response: Response, name: str, value: str, *, max_age: int | None) -> None:
        """Set a cookie with these attributes (`max_age` None: until the browser closes)."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")


@dataclass(frozen=True)
class BrowserSession:
    id: uuid.UUID
    account: Account
    auth_time: datetime


async def start_browser_session(
    db: AsyncSession, account: Account, policy: CookiePolicy, now: datetime
) -> tuple[uuid.UUID, str]:
    """A new browser sign-in session of `account`; its id and the cookie's value."""
    cookie = secrets.token_urlsafe(32)
    session_id = uuid.uuid4()
    await db.execute(
        insert(SignInSession).values(
            id=session_id,
            account_id=account.id,
            client_id=None,
            scope="",
            created_at=now,
            last_used_at=now,
            expires_at=now + policy.ttl,
            kind=BROWSER,
            cookie_hash=hash_token(cookie),
        )
    )
    return session_id, cookie


async def find_browser_session(
    db: AsyncSession, cookie: str | None, now: datetime
) -> BrowserSession | None:
    """The live session the cookie names, of an enabled account; None otherwise."""
    if not cookie or not well_formed(cookie):
        return None
    found = (
        await db.execute(
            select(SignInSession.id, SignInSession.created_at, Account)
            .join(Account, Account.id == SignInSession.account_id)
            .where(
                SignInSession.cookie_hash == hash_token(cookie),
                SignInSession.kind == BROWSER,
                SignInSession.revoked_at.is_(None),
                SignInSession.expires_at > now,
                Account.disabled.is_(False),
            )
        )
    ).first()
    if found is None:
        return None
    session_id, created_at, account = found
    return BrowserSession(session_id, account, created_at)


async def end_browser_session(
    db: AsyncSession, cookie: str | None, now: datetime
) -> uuid.UUID | None:
    """Revoke the session the cookie names (signed out); its account id, if there was one."""
    if not cookie or not well_formed(cookie):
        return None
    ended = (
        await db.execute(
            update(SignInSession)
            .where(
                SignInSession.cookie_hash == hash_token(cookie),
                SignInSession.kind == BROWSER,
                SignInSession.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason=RevokedReason.SIGNED_OUT.value)
            .returning(SignInSession.account_id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    return ended[0] if ended else None
