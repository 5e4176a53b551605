"""The auth service's application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from auth_service.db import Database
from auth_service.routes import health
from auth_service.settings import Settings
from service_kit.logging import configure_logging
from service_kit.problems import install_problem_handlers
from service_kit.request_context import RequestContextMiddleware

PREFIX = "/auth"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; every route lives under `/auth` so it is the same direct and via the gateway."""
    settings = settings or Settings()
    configure_logging("auth", settings.log_level)
    database = Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await database.dispose()

    app = FastAPI(
        title="Auth service",
        version="0.1.0",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        openapi_url=f"{PREFIX}/openapi.json",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router, prefix=PREFIX)
    return app
