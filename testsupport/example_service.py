"""A service made of nothing but the chassis, for service-kit's own tests."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar

from fastapi import APIRouter, FastAPI
from httpx import AsyncClient
from pydantic import Field

from service_kit.app import Lifespan, create_service_app
from service_kit.db import Database
from service_kit.health import ReadinessCheck
from service_kit.settings import ServiceSettings
from testsupport.apps import serving

UNREACHABLE_DATABASE = "postgresql+asyncpg://nobody@127.0.0.1:1/none"


class ExampleSettings(ServiceSettings):
    """An `example` service: routes under `/example`, variables EXAMPLE_HOST and so on."""

    service_name: ClassVar[str] = "example"
    host: str = Field("127.0.0.1", validation_alias="EXAMPLE_HOST")
    port: int = Field(8009, ge=1, le=65535, validation_alias="EXAMPLE_PORT")
    database_url: str = Field("", validation_alias="EXAMPLE_DATABASE_URL")


def example_app(settings: ExampleSettings, **factory: Any) -> FastAPI:
    """`create_service_app` for the example service; `factory` overrides its arguments."""
    arguments: dict[str, Any] = {
        "title": "Example",
        "description": "A service with nothing but the chassis.",
        "routers": [],
        **factory,
    }
    return create_service_app(settings, Database(settings.database_url), **arguments)


@asynccontextmanager
async def example_client(
    database_url: str,
    *,
    routers: Sequence[APIRouter] = (),
    readiness: Sequence[ReadinessCheck] = (),
    lifespan: Lifespan | None = None,
    **settings: Any,
) -> AsyncIterator[AsyncClient]:
    """The example app on `database_url` (with `settings` overridden), a client on it."""
    app = example_app(
        ExampleSettings(database_url=database_url, **settings),
        routers=routers,
        readiness=readiness,
        lifespan=lifespan,
    )
    async with serving(app, "http://example.test") as client:
        yield client
