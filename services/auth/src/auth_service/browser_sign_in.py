"""The operations behind the hosted sign-in page and RP-Initiated Logout; each commits.

`authorize` answers `GET /auth/authorize`: a code straight away for a browser already
signed in (unless `prompt=login`), `login_required` for `prompt=none` without a session,
else the page. `sign_in` answers the page's form: the same throttled password check as
the token endpoint (`sign_in.check_password`), then a new browser session and a code.
`log_out` ends the browser session and, with an `id_token_hint`, that client's session.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, authorization_codes, browser_sessions, clients, sign_in_sessions
from auth_service.audit import Event
from auth_service.authorization import (
    AuthorizationRedirectError,
    AuthorizationRequest,
    check_request,
)
from auth_service.authorization_codes import CodeGrant
from auth_service.browser_sessions import BrowserSession, CookiePolicy
from auth_service.clock import utcnow
from auth_service.csrf import CsrfProtection
from auth_service.grants import BAD_CREDENTIALS, Issuance
from auth_service.id_tokens import InvalidIdTokenError, id_token_hint_claims
from auth_service.models import SignInSession
from auth_service.passwords import (
    PasswordWorkBusyError,
)
from auth_service.sign_in import (
    BadCredentialsError,
    PasswordAttempt,
    ThrottledError,
    check_password,
)
from auth_service.sign_in_sessions import RevokedReason


@dataclass(frozen=True)
class SignInContext:
    """Everything the page's operations need besides the database; one per application."""

    issuance: Issuance
    code_ttl: timedelta
    cookie: CookiePolicy
    csrf: CsrfProtection


@dataclass(frozen=True)
class ShowPage:
    """Show the sign-in page for `request` (with an error, after a failed attempt)."""

    request: AuthorizationRequest
    error: str | None = None
    status: int = 200
    retry_after: int | None = None


@dataclass(frozen=True)
class Redirect:
    """Send the browser to `location`; set (a value) or clear ("") the sign-in cookie."""

    location: str
    cookie: str | None = None


async def authorize(
    db: AsyncSession,
    context: SignInContext,
    parameters: dict[str, str],
    repeated: set[str],
    cookie: str | None,
) -> ShowPage | Redirect:
    """`GET /auth/authorize`; raises the errors of `authorization.check_request`."""
    now = utcnow()
    issuer = context.issuance.issuer.issuer
    request = await check_request(db, parameters, repeated, scopes=context.issuance.scopes, now=now)
    session = await browser_sessions.find_browser_session(db, cookie, now)
    if request.prompt == "none" and session is None:
        raise AuthorizationRedirectError(request.target, "login_required", "No one is signed in.")
    if session is None or request.prompt == "login":
        return ShowPage(request)
    code = await _issue_code(db, context, request, session)
    await db.commit()
    return Redirect(request.target.location(issuer, {"code": code}))


async def sign_in(
    db: AsyncSession,
    context: SignInContext,
    form: dict[str, str],
    *,
    cookie: str | None,
    client_address: str | None,
) -> ShowPage | Redirect:
    """The sign-in form's POST (its fields each sent once, `oauth.read_form`): the request
    again, then the password; a code on success."""
    issuance = context.issuance
    request = await check_request(db, form, set(), scopes=issuance.scopes, now=utcnow())
    await db.rollback()  # check_password commits: it must start with nothing written
    username, password = form.get("username", ""), form.get("password", "")
    if not username or not password:
        return ShowPage(request, "Enter your email or username and your password.", 400)
    attempt = PasswordAttempt(username, password, client_address, "sign_in_page", request.client.id)
    try:
        account = await check_password(db, issuance.hasher, issuance.throttle, attempt)
    except ThrottledError as exc:
        message = f"Too many failed sign-ins; try again in {exc.retry_after} seconds."
        return ShowPage(request, message, 429, exc.retry_after)
    except BadCredentialsError:
        return ShowPage(request, BAD_CREDENTIALS, 400)
    except PasswordWorkBusyError as exc:
        message = "Too many sign-ins are being checked; try again in a moment."
        return ShowPage(request, message, 503, exc.retry_after_seconds)
    now = utcnow()
    if issuance.hasher.needs_rehash(account.password_hash):
        account.password_hash = await issuance.hasher.hash(password)
        audit.record(db, Event.PASSWORD_REHASHED, now=now, account_id=account.id)
    # A new sign-in replaces the browser's previous one (prompt=login, another account).
    await browser_sessions.end_browser_session(db, cookie, now)
    session_id, new_cookie = await browser_sessions.start_browser_session(
        db, account, context.cookie, now
    )
    audit.record(
        db,
        Event.LOGIN_SUCCEEDED,
        now=now,
        account_id=account.id,
        client_address=client_address,
        client_id=request.client.id,
        session_id=str(session_id),
    )
    code = await _issue_code(db, context, request, BrowserSession(session_id, account, now))
    await db.commit()
    location = request.target.location(issuance.issuer.issuer, {"code": code})
    return Redirect(location, cookie=new_cookie)


async def form_expired(db: AsyncSession, context: SignInContext, form: dict[str, str]) -> ShowPage:
    """A form whose CSRF token does not match the browser's cookie: the page again."""
    request = await check_request(db, form, set(), scopes=context.issuance.scopes, now=utcnow())
    return ShowPage(request, "This form has expired. Please sign in again.", 400)


async def _issue_code(
    db: AsyncSession,
    context: SignInContext,
    request: AuthorizationRequest,
    session: BrowserSession,
) -> str:
    grant = CodeGrant(
        client_id=request.client.id,
        redirect_uri=request.target.redirect_uri,
        code_challenge=request.code_challenge,
        scope=request.scope,
        nonce=request.nonce,
        account_id=session.account.id,
        browser_session_id=session.id,
        auth_time=session.auth_time,
    )
    return await authorization_codes.issue_code(db, grant, now=utcnow(), ttl=context.code_ttl)


@dataclass(frozen=True)
class LogoutOutcome:
    """Where to send the browser after signing out (None: show the signed-out page)."""

    location: str | None


async def log_out(
    db: AsyncSession,
    context: SignInContext,
    parameters: dict[str, str],
    cookie: str | None,
    client_address: str | None,
) -> LogoutOutcome:
    """RP-Initiated Logout 1.0: end the browser session; with a valid `id_token_hint`,
    revoke the client's session it names (`sid`) and honour a `post_logout_redirect_uri`
    registered for that client (without a valid hint there is no client to trust one for)."""
    now = utcnow()
    issuance = context.issuance
    account_id = await browser_sessions.end_browser_session(db, cookie, now)
    location = None
    hint = parameters.get("id_token_hint")
    claims = None
    if hint is not None:
        try:
            claims = id_token_hint_claims(hint, issuance.keys, issuance.issuer.issuer)
        except InvalidIdTokenError:
            claims = None
    client_id = parameters.get("client_id")
    if claims is not None and (client_id is None or client_id == claims["aud"]):
        client = await clients.load(db, claims["aud"], now)
        sid = claims.get("sid")
        if isinstance(sid, str):
            await _revoke_client_session(db, sid, claims["sub"], claims["aud"], now)
        redirect_uri = parameters.get("post_logout_redirect_uri")
        if client is not None and redirect_uri in client[0].redirect_uris:
            state = parameters.get("state")
            location = redirect_uri
            if state is not None:
                separator = "&" if urlsplit(redirect_uri).query else "?"
                location = f"{redirect_uri}{separator}{urlencode({'state': state})}"
    if account_id is not None:
        audit.record(
            db,
            Event.SIGNED_OUT,
            now=now,
            account_id=account_id,
            client_address=client_address,
            client_id=claims["aud"] if claims else None,
        )
    await db.commit()
    return LogoutOutcome(location)


async def _revoke_client_session(
    db: AsyncSession, sid: str, subject: str, client_id: str, now: datetime
) -> None:
    """Revoke the session an ID token names, when it is that person's and that client's."""
    try:
        session_id, account_id = uuid.UUID(sid), uuid.UUID(subject)
    except ValueError:
        return
    found = await db.scalar(
        select(SignInSession.id).where(
            SignInSession.id == session_id,
            SignInSession.account_id == account_id,
            SignInSession.client_id == client_id,
        )
    )
    if found is not None:
        await sign_in_sessions.revoke_session(db, found, RevokedReason.SIGNED_OUT, now)
