"""The users service's application factory."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI, Request

from auth_client import JwksClient, TokenPolicy, TokenVerifier, VerifiedTokenCache
from service_kit.app import create_service_app
from service_kit.db import Database
from service_kit.health import ReadinessCheck
from service_kit.notifications import NotificationListener, is_postgresql
from users_service import profile_cache
from users_service.profile_cache import ProfileCache
from users_service.revocations import DenyListFeed
from users_service.routes import events, profiles
from users_service.settings import Settings


async def _keys_held(request: Request) -> bool:
    jwks: JwksClient = request.app.state.jwks
    return await jwks.load()


KEYS_HELD = ReadinessCheck(
    name="jwks",
    condition="a key set from the auth service is held",
    failure="No signing keys have been loaded from the auth service yet.",
    probe=_keys_held,
)


FEED_STOP_TIMEOUT_SECONDS = 10.0
log = structlog.stdlib.get_logger(__name__)


def create_app(
    settings: Settings | None = None, *, jwks_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app: its routes under `/users`.

    `jwks_transport` replaces the network under the JWKS client (tests: `httpx.MockTransport`).
    """
    settings = settings or Settings()
    database = Database(settings.database_url)
    # Several replicas (PostgreSQL) learn of each other's profile writes by notification, and
    # trust their cache only while listening; one SQLite process invalidates its own.
    listener = None
    if is_postgresql(settings.database_url) and settings.profile_cache_size:
        listener = NotificationListener(settings.database_url, name="users profile cache")
    cache = ProfileCache(
        settings.profile_cache_size,
        settings.profile_cache_seconds,
        active=(lambda: listener.live) if listener else (lambda: True),
    )
    if listener:
        listener.subscribe(profile_cache.CHANNEL, cache.invalidate_payload)
        listener.on_reset(cache.clear)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The JWKS client lives as long as the app; start-up only begins loading the keys,
        # so the service comes up (and says it is not ready) while auth is still down.
        async with JwksClient.open(
            settings.jwks_url,
            timeout_seconds=settings.jwks_fetch_timeout_seconds,
            transport=jwks_transport,
            min_cache_seconds=settings.jwks_cache_min_seconds,
            max_cache_seconds=settings.jwks_cache_max_seconds,
            refetch_cooldown_seconds=settings.jwks_refetch_cooldown_seconds,
            max_staleness_seconds=settings.jwks_max_staleness_seconds,
            retry_seconds=settings.jwks_retry_seconds,
        ) as jwks:
            policy = TokenPolicy(
                issuer=settings.public_url,
                audience=settings.access_token_audience,
                leeway_seconds=settings.token_leeway_seconds,
                max_bytes=settings.token_max_bytes,
            )
            app.state.jwks = jwks
            verifier = TokenVerifier(
                jwks, policy, cache=VerifiedTokenCache(settings.token_cache_size)
            )
            app.state.token_verifier = verifier
            # The deny list: revoked sessions and disabled or deleted accounts, from the
            # auth service's events, kept in step with every replica's (revocations.py).
            feed = DenyListFeed(
                database,
                verifier,
                reload_seconds=settings.deny_list_reload_seconds,
                max_entries=settings.deny_list_max_entries,
            )
            app.state.deny_list_feed = feed
            feeding = asyncio.create_task(feed.run())
            try:
                if listener is None:
                    yield
                else:
                    async with listener.running():
                        yield
            finally:
                feed.stop()
                try:
                    await asyncio.wait_for(feeding, FEED_STOP_TIMEOUT_SECONDS)
                except TimeoutError:
                    log.warning("deny_list_feed_not_stopped")

    app = create_service_app(
        settings,
        database,
        title="Users service",
        description="Profiles, for the accounts whose access tokens the auth service signs.",
        routers=[events.router, profiles.router],
        lifespan=lifespan,
        readiness=[KEYS_HELD],
    )
    app.state.profile_cache = cache
    app.state.profile_cache_listener = listener  # None on SQLite
    return app
