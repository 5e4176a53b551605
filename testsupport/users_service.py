"""What the users service's tests share: settings that trust the tokens `testsupport.tokens`
mints, and the app on a JWKS endpoint that publishes their keys."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from httpx import AsyncClient

from testsupport.apps import serving
from testsupport.tokens import AUDIENCE, ISSUER, JWKS_URL, JwksServer
from users_service.main import create_app
from users_service.settings import Settings


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """The users service's settings, trusting the issuer and JWKS these tests stand in for."""
    return Settings(
        database_url=database_url,
        public_url=ISSUER,
        jwks_url=JWKS_URL,
        access_token_audience=AUDIENCE,
        **overrides,
    )


@asynccontextmanager
async def running_app(settings: Settings, jwks_server: JwksServer) -> AsyncIterator[AsyncClient]:
    """The whole users app (lifespan included), its key set fetched from `jwks_server`."""
    app = create_app(settings, jwks_transport=jwks_server.transport)
    async with serving(app, "http://users.test") as client:
        yield client
