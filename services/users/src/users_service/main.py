"""The users service's application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from auth_client import JwksClient, TokenPolicy, TokenVerifier, VerifiedTokenCache
from service_kit.docs import install_docs
from service_kit.logging import configure_logging
from service_kit.middleware import install_middleware
from service_kit.openapi import install_problem_documents
from service_kit.problems import install_problem_handlers
from users_service.db import Database
from users_service.routes import health, profiles
from users_service.settings import Settings

PREFIX = "/users"


def create_app(
    settings: Settings | None = None, *, jwks_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app; every route lives under `/users` so it is the same direct and via the gateway.

    `jwks_transport` replaces the network under the JWKS client (tests: `httpx.MockTransport`).
    """
    settings = settings or Settings()
    configure_logging("users", settings.log_level)
    database = Database(settings.database_url)

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
            app.state.token_verifier = TokenVerifier(
                jwks, policy, cache=VerifiedTokenCache(settings.token_cache_size)
            )
            yield
        await database.dispose()

    app = FastAPI(
        title="Users service",
        version="0.1.0",
        docs_url=None,  # service_kit.docs serves them, under the prefix
        redoc_url=None,
        openapi_url=f"{PREFIX}/openapi.json",
        lifespan=lifespan,
    )
    install_docs(app, PREFIX)
    app.state.settings = settings
    app.state.database = database
    install_problem_handlers(app)
    install_middleware(
        app,
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
        public_url=settings.public_url,
        docs_prefix=f"{PREFIX}/docs",
    )
    app.include_router(health.router, prefix=PREFIX)
    app.include_router(profiles.router, prefix=PREFIX)
    install_problem_documents(app)
    return app
