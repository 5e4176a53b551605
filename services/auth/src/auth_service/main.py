"""The auth service's application factory."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from auth_service import clients, introspection, mail_delivery, replica_cache, retention
from auth_service.accounts import PasswordRules
from auth_service.browser_sessions import CookiePolicy
from auth_service.browser_sign_in import SignInContext
from auth_service.client_auth import (
    ClientAuthenticator,
    PublicClientCache,
    verified_client_cache,
)
from auth_service.clients import ClientSecretHasher
from auth_service.clock import utcnow
from auth_service.csrf import CsrfProtection
from auth_service.event_publisher import (
    EventPublisher,
    PublisherPolicy,
    PublisherToken,
    parse_subscribers,
)
from auth_service.grants import Issuance
from auth_service.key_encryption import KeyEncryption
from auth_service.key_store import SigningKeyStore
from auth_service.keys import KeyTimings
from auth_service.mail import MailedLinks, MailSealer, Outbox
from auth_service.mail_delivery import DeliveryPolicy, MailSender, SmtpSender
from auth_service.oauth import OAuthError
from auth_service.passwords import PasswordHasher, PasswordWorkBusyError
from auth_service.replica_cache import CHANGED_CLIENTS, REVOKED_SESSIONS
from auth_service.retention import RetentionPolicy
from auth_service.routes import accounts, admin, oauth, recovery, sessions, sign_in, well_known
from auth_service.settings import Settings
from auth_service.sign_in_sessions import SessionPolicy
from auth_service.throttling import ThrottlePolicy
from auth_service.tokens import LEEWAY_SECONDS, TokenIssuer
from service_kit.app import create_service_app
from service_kit.db import Database
from service_kit.notifications import NotificationListener, is_postgresql
from service_kit.overload import RETRY_AFTER_SECONDS, problem_shedding
from service_kit.problems import problem

# The first attempt to load the keys is made before serving; later ones in the background.
KEY_BOOTSTRAP_TIMEOUT_SECONDS = 15.0
_OAUTH_PATHS = {"/auth/token", "/auth/revoke", "/auth/introspect"}

log = structlog.stdlib.get_logger(__name__)


def key_timings(settings: Settings) -> KeyTimings:
    """A retired key stays published while a token it signed may still be checked: the
    token lifetime, plus a replica's reload interval (it may sign a little longer), plus
    the verifiers' clock leeway."""
    retention = settings.access_token_ttl_seconds + settings.key_refresh_seconds + LEEWAY_SECONDS
    return KeyTimings(
        publish_delay=timedelta(seconds=settings.key_publish_delay_seconds),
        retention=timedelta(seconds=retention),
    )


def retention_policy(settings: Settings) -> RetentionPolicy:
    """How long each kind of row is kept, from the settings."""
    return RetentionPolicy(
        throttle_window=timedelta(seconds=settings.login_throttle_window_seconds),
        sessions=timedelta(seconds=settings.session_retention_seconds),
        audit=timedelta(seconds=settings.audit_retention_seconds),
    )


def publisher_policy(settings: Settings) -> PublisherPolicy:
    """How the event publisher polls, batches, retries and holds its lease."""
    return PublisherPolicy(
        poll_seconds=settings.event_poll_seconds,
        batch_size=settings.event_batch_size,
        retry_max_seconds=settings.event_retry_max_seconds,
        timeout_seconds=settings.event_delivery_timeout_seconds,
        lease_seconds=settings.event_publisher_lease_seconds,
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    """How mail is sent, from the settings. A claim outlasts a slow SMTP exchange (connect,
    STARTTLS, login and the message, each within the timeout)."""
    return DeliveryPolicy(
        sender_address=settings.smtp_from,
        max_attempts=settings.mail_max_attempts,
        retry_base=timedelta(seconds=settings.mail_retry_base_seconds),
        claim_for=timedelta(seconds=max(60.0, 5 * settings.smtp_timeout_seconds)),
    )


def smtp_sender(settings: Settings) -> SmtpSender:
    return SmtpSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )


def _body_too_large(path: str, detail: str) -> Response:
    # The token and revocation endpoints answer errors as RFC 6749 §5.2 says.
    if path in _OAUTH_PATHS:
        return OAuthError("invalid_request", detail, status=413).response()
    return problem(413, detail)


def _overloaded(path: str, detail: str) -> Response:
    # RFC 6749 §5.2 has no code for a server that cannot serve; `invalid_request` makes no
    # claim about the client's credentials (as when no signing key is loaded: grants.py).
    if path in _OAUTH_PATHS:
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return OAuthError("invalid_request", detail, status=503, headers=retry).response()
    return problem_shedding(path, detail)


async def _password_work_busy(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PasswordWorkBusyError)
    retry = {"Retry-After": str(exc.retry_after_seconds)}
    return problem(503, "Too many passwords are being checked; try again shortly.", headers=retry)


async def _oauth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OAuthError)
    return exc.response()


async def ensure_default_client(database: Database, settings: Settings) -> None:
    """Create the default client, or bring it to the settings (replicas may race: the
    statement is atomic)."""
    async with database.db_session() as db:
        await clients.ensure_default_client(
            db, settings.default_client_id, settings.default_client_scope_set, utcnow()
        )


def caches_listener(settings: Settings) -> tuple[NotificationListener | None, Callable[[], bool]]:
    """The listener through which this process learns of other processes' revocations and
    client changes (`replica_cache`), and whether the caches they empty may be trusted now:
    on PostgreSQL, while it listens; on SQLite (one serving process) always."""
    wanted = settings.verified_client_cache_seconds or settings.introspection_cache_seconds
    if not (wanted and is_postgresql(settings.database_url)):
        return None, lambda: True
    listener = NotificationListener(settings.database_url, name="auth caches")
    return listener, lambda: listener.live


def sign_in_context(settings: Settings, issuance: Issuance) -> SignInContext:
    """The hosted sign-in page's settings: code lifetime, cookies, CSRF key."""
    session_ttl = timedelta(seconds=settings.sign_in_session_ttl_seconds)
    cookie = CookiePolicy.for_public_url(settings.public_url, session_ttl, "signin")
    csrf_cookie = CookiePolicy.for_public_url(settings.public_url, session_ttl, "signin-csrf")
    return SignInContext(
        issuance=issuance,
        code_ttl=timedelta(seconds=settings.authorization_code_ttl_seconds),
        cookie=cookie,
        csrf=CsrfProtection.of(settings.key_encryption_key.get_secret_value(), csrf_cookie.name),
    )


def create_app(
    settings: Settings | None = None,
    *,
    password_hasher: PasswordHasher | None = None,
    mail_sender: MailSender | None = None,
) -> FastAPI:
    """Build the app: its routes under `/auth`, the key set and discovery under `/.well-known`.

    `password_hasher` replaces the one the settings describe (tests count its checks), and
    `mail_sender` the SMTP server (tests keep the messages).
    """
    settings = settings or Settings()
    database = Database(settings.database_url, sqlite_pool_size=1)
    listener, caches_active = caches_listener(settings)
    verified_clients = verified_client_cache(settings.verified_client_cache_seconds, caches_active)
    introspection_caches = introspection.introspection_caches(
        settings.introspection_cache_seconds, caches_active
    )
    replica_cache.attach(
        database,
        {CHANGED_CLIENTS: verified_clients, REVOKED_SESSIONS: introspection_caches.live_sessions},
    )
    if listener is not None:
        listener.subscribe(CHANGED_CLIENTS, verified_clients.forget_payload)
        listener.subscribe(REVOKED_SESSIONS, introspection_caches.live_sessions.forget_payload)
        listener.on_reset(verified_clients.clear)
        listener.on_reset(introspection_caches.live_sessions.clear)
    hasher = password_hasher or PasswordHasher(
        settings.bcrypt_cost,
        settings.hash_threads,
        max_wait_seconds=settings.password_hash_max_wait_seconds,
    )
    throttle = ThrottlePolicy(
        free_per_pair=settings.login_free_attempts_per_account_address,
        free_per_address=settings.login_free_attempts_per_address,
        free_per_login=settings.login_free_attempts_per_account,
        base_seconds=settings.login_throttle_base_seconds,
        max_seconds=settings.login_throttle_max_seconds,
        window_seconds=settings.login_throttle_window_seconds,
        targeted_first_wait_seconds=settings.login_targeted_first_wait_seconds,
    )
    keys = SigningKeyStore(
        database,
        KeyEncryption(settings.key_encryption_key.get_secret_value()),
        key_timings(settings),
        settings.jwks_max_age_seconds,
    )
    issuance = Issuance(
        hasher=hasher,
        keys=keys,
        issuer=TokenIssuer(
            issuer=settings.public_url,
            audience=settings.access_token_audience,
            ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        ),
        sessions=SessionPolicy(
            idle_ttl=timedelta(seconds=settings.refresh_token_idle_ttl_seconds),
            absolute_ttl=timedelta(seconds=settings.refresh_token_absolute_ttl_seconds),
        ),
        throttle=throttle,
        scopes=settings.scope_set,
        clients=ClientAuthenticator(
            hasher=ClientSecretHasher(settings.key_encryption_key.get_secret_value()),
            throttle=throttle,
            issuer=settings.public_url,
            default_client_id=settings.default_client_id,
            default_client_scopes=settings.default_client_scope_set,
            public_clients=PublicClientCache(settings.public_client_cache_seconds),
            verified_clients=verified_clients,
        ),
    )

    outbox = Outbox(
        MailSealer(settings.key_encryption_key.get_secret_value()), settings.link_base_url
    )
    links = MailedLinks(
        outbox,
        token_ttl=timedelta(seconds=settings.email_token_ttl_seconds),
        # The last free request is answered and sets the wait the next one meets.
        throttle=ThrottlePolicy(
            free_per_pair=settings.mail_free_requests_per_recipient - 1,
            free_per_address=settings.mail_free_requests_per_address - 1,
            free_per_login=settings.mail_free_requests_per_recipient,
            base_seconds=min(60.0, settings.login_throttle_max_seconds),
            max_seconds=settings.login_throttle_max_seconds,
            window_seconds=settings.login_throttle_window_seconds,
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(KEY_BOOTSTRAP_TIMEOUT_SECONDS):
                await keys.bootstrap()
        except Exception as exc:  # the database may not be up yet: keep trying in the background
            log.warning("signing_keys_not_loaded", error=type(exc).__name__)
        # When the database answers (the keys loaded); otherwise the first request that
        # names the default client creates it (`client_auth`).
        if keys.loaded:
            try:
                async with asyncio.timeout(KEY_BOOTSTRAP_TIMEOUT_SECONDS):
                    await ensure_default_client(database, settings)
            except Exception as exc:
                log.warning("default_client_not_ensured", error=type(exc).__name__)
        tasks = [asyncio.create_task(keys.keep_fresh(settings.key_refresh_seconds))]
        stop_delivering = asyncio.Event()
        delivering = None
        if settings.mail_poll_seconds:
            delivering = asyncio.create_task(
                mail_delivery.keep_delivering(
                    database,
                    outbox.sealer,
                    mail_sender or smtp_sender(settings),
                    delivery_policy(settings),
                    settings.mail_poll_seconds,
                    stop_delivering,
                )
            )
        if settings.purge_interval_seconds:
            purging = retention.keep_purging(
                database, retention_policy(settings), settings.purge_interval_seconds
            )
            tasks.append(asyncio.create_task(purging))
        if subscribers := parse_subscribers(settings.event_subscribers):
            publisher = EventPublisher(
                database,
                subscribers,
                PublisherToken(keys, issuance.issuer),
                publisher_policy(settings),
            )
            tasks.append(asyncio.create_task(publisher.run()))
        try:
            if listener is None:
                yield
            else:
                async with listener.running():
                    yield
        finally:
            if delivering is not None:
                # Let a round under way finish (each SMTP step has its timeout), then go;
                # a timeout (the round is cancelled) or a failure does not stop the shutdown.
                stop_delivering.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(delivering, 5 * settings.smtp_timeout_seconds)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = create_service_app(
        settings,
        database,
        title="Auth service",
        description=(
            "Accounts, RS256 access tokens (RFC 9068), rotating refresh tokens, registered "
            "clients (client_credentials, token introspection)."
        ),
        # The OAuth endpoints first: routes are tried in order, and the token and
        # introspection endpoints are the hottest paths (~75 µs of matching saved per call).
        routers=[
            oauth.router,
            accounts.router,
            recovery.router,
            sessions.router,
            admin.router,
            sign_in.router,
        ],
        lifespan=lifespan,
        body_refusal=_body_too_large,
        shedding=_overloaded,
        # The key set is what every verifier needs to stay up; it is answered from memory.
        unlimited_paths=[well_known.JWKS_PATH],
        error_handlers={OAuthError: _oauth_error, PasswordWorkBusyError: _password_work_busy},
    )
    app.state.issuance = issuance
    app.state.introspector = introspection.Introspector(database, issuance, introspection_caches)
    app.state.caches_listener = listener  # None on SQLite, or with both caches off
    app.state.sign_in = sign_in_context(settings, issuance)
    app.state.mailed_links = links
    app.state.password_rules = PasswordRules(hasher, settings.password_min_score)
    app.include_router(well_known.router)
    return app
