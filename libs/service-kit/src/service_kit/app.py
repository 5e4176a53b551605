"""The application factory every service builds its app with.

`create_service_app` gives a service what every service has, declared once: its routes under
`/<service>`, the docs there (`/<service>/openapi.json`, listing every error answer as well,
and Swagger UI at `/<service>/docs`, served by the service itself), JSON logs,
problem details for every error, the middleware (security headers, the client's address,
the request id and access log, the body limit), `/health` and `/ready`, and the database
disposed at shutdown. The service adds its own routers, its lifespan (what it starts and
stops), its readiness checks, and the answers of errors that have a shape of their own.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from service_kit.body_limit import Refusal
from service_kit.db import Database
from service_kit.docs import install_docs
from service_kit.health import DATABASE_ANSWERS, ReadinessCheck, health_router
from service_kit.logging import configure_logging
from service_kit.middleware import install_middleware
from service_kit.openapi import install_problem_documents
from service_kit.overload import Shedding
from service_kit.problems import install_problem_handlers
from service_kit.settings import ServiceSettings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


def create_service_app(
    settings: ServiceSettings,
    database: Database,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    lifespan: Lifespan | None = None,
    readiness: Sequence[ReadinessCheck] = (),
    body_refusal: Refusal | None = None,
    shedding: Shedding | None = None,
    unlimited_paths: Sequence[str] = (),
    error_handlers: Mapping[type[Exception], ErrorHandler] | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's app; `routers` are mounted under the service's prefix.

    `lifespan` runs inside the app's own (the database is disposed after it); `readiness`
    checks follow the database's. Every error is a problem document, but the exceptions
    `error_handlers` answer; bodies over MAX_BODY_BYTES are refused unread, and
    `body_refusal(path, detail)` shapes that 413 where a route's errors have a shape of their
    own (RFC 6749's on the OAuth endpoints). Past MAX_CONCURRENT_REQUESTS in flight a request
    is shed with 503 (`shedding(path, detail)` shapes it likewise), but for `/health`, `/ready`
    and the `unlimited_paths`.
    """
    configure_logging(settings.service_name, settings.log_level)
    prefix = settings.route_prefix

    @asynccontextmanager
    async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            await database.dispose()

    app = FastAPI(
        title=title,
        version=version,
        description=description,
        docs_url=None,  # service_kit.docs serves them, with no CDN
        redoc_url=None,
        openapi_url=f"{prefix}/openapi.json",
        lifespan=app_lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    install_docs(app, prefix)  # before the routes: `<prefix>/{id}` would take `<prefix>/docs`
    install_problem_documents(app)
    install_problem_handlers(app)
    for exception, handler in (error_handlers or {}).items():
        app.add_exception_handler(exception, handler)
    install_middleware(
        app,
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
        public_url=settings.public_url,
        docs_prefix=f"{prefix}/docs",
        body_refusal=body_refusal,
        max_concurrent_requests=settings.max_concurrent_requests,
        request_queue_timeout=settings.request_queue_timeout_seconds,
        unlimited_paths=(f"{prefix}/health", f"{prefix}/ready", *unlimited_paths),
        shedding=shedding,
    )
    app.include_router(health_router([DATABASE_ANSWERS, *readiness]), prefix=prefix)
    for router in routers:
        app.include_router(router, prefix=prefix)
    return app
