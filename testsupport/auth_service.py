"""What the auth service's tests share: fast settings, a schema, an app and its client."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

from httpx import AsyncClient

from auth_service import clients, registration
from auth_service.clients import ClientSecretHasher
from auth_service.clock import utcnow
from auth_service.main import create_app
from auth_service.models import Base
from auth_service.passwords import PasswordHasher
from auth_service.settings import Settings
from service_kit.db import Database, create_engine
from testsupport.apps import serving

STRONG_PASSWORD = "correct horse battery staple"  # noqa: S105 - a test account's
OTHER_STRONG_PASSWORD = "plaid unicorn jazz teapot"  # noqa: S105 - a test account's
# The lowest bcrypt cost: tests check behaviour, the benchmark measures cost 12.
FAST: dict[str, Any] = {
    "bcrypt_cost": 4,
    "jwks_max_age_seconds": 0,
    "key_refresh_seconds": 0.05,
    "key_publish_delay_seconds": 0.3,
    # Prompt, but not so often that the poll competes with requests for SQLite's connection.
    "mail_poll_seconds": 0.1,
}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """The auth service's settings on `database_url`, made fast for tests."""
    return Settings(database_url=database_url, **{**FAST, **overrides})


async def create_schema_async(database_url: str) -> None:
    """The models' tables (the migration is checked against them in test_migrations)."""
    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()


def create_schema(database_url: str) -> None:
    """`create_schema_async`, from a test that has no event loop running."""
    asyncio.run(create_schema_async(database_url))


class Mailbox:
    """A mail server for tests (the delivery worker's `MailSender`): keeps every message
    it accepts; refuses the next `failures` ones."""

    def __init__(self, failures: int = 0) -> None:
        self.messages: list[EmailMessage] = []
        self.failures = failures
        self.arrived = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("the test's mail server refuses")
        self.messages.append(message)
        self.arrived.set()

    async def next_to(self, recipient: str, wait_seconds: float = 5) -> EmailMessage:
        """The first message to `recipient` not yet taken, waiting for it; taken."""
        async with asyncio.timeout(wait_seconds):
            while True:
                for message in self.messages:
                    if message["To"] == recipient:
                        self.messages.remove(message)
                        return message
                self.arrived.clear()
                await self.arrived.wait()


def mailed_token(message: EmailMessage) -> str:
    """The token a mailed link carries (`…?token=…`), from the plain-text body."""
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    return str(text.split("?token=", 1)[1].split()[0])


@asynccontextmanager
async def running_app(
    settings: Settings,
    password_hasher: PasswordHasher | None = None,
    mailbox: Mailbox | None = None,
) -> AsyncIterator[AsyncClient]:
    """The app with its lifespan started (keys loaded), and an HTTP client on it; its mail
    goes to `mailbox` (by default one nobody reads: never to a real server)."""
    app = create_app(settings, password_hasher=password_hasher, mail_sender=mailbox or Mailbox())
    async with serving(app, "http://auth.test") as client:
        yield client


async def password_login(
    client: AsyncClient, username: str, password: str = STRONG_PASSWORD, **extra: str
) -> dict[str, Any]:
    """The token response of a password grant that must succeed."""
    response = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password, **extra},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def register(
    client: AsyncClient, email: str, password: str = STRONG_PASSWORD, **extra: str
) -> dict[str, Any]:
    """The account a registration that must succeed answers."""
    response = await client.post(
        "/auth/register", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    """The Authorization header of a token response's access token."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def refused_on_bearer_endpoints(client: AsyncClient, tokens: dict[str, Any]) -> bool:
    """The access token no longer works on auth's own bearer endpoints (RFC 6750 §3.1)."""
    answers = [
        await client.post("/auth/logout-all", headers=bearer(tokens)),
        await client.post(
            "/auth/password",
            json={"current_password": STRONG_PASSWORD, "new_password": OTHER_STRONG_PASSWORD},
            headers=bearer(tokens),
        ),
    ]
    return all(
        answer.status_code == 401
        and answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        for answer in answers
    )


class CountingHasher(PasswordHasher):
    """A real hasher that counts the password checks it makes."""

    def __init__(self, cost: int = 4, threads: int = 2) -> None:
        super().__init__(cost, threads)
        self.checks = 0

    async def verify(self, password: str, password_hash: str | None) -> bool:
        self.checks += 1
        return await super().verify(password, password_hash)


async def add_client(
    database_url: str,
    client_id: str,
    client_type: str = "public",
    *,
    settings: Settings | None = None,
    **fields: Any,
) -> str | None:
    """Register a client as `auth-service clients create` does; its secret, if it got one.

    `fields` are `registration.registration`'s (grant_types, scopes, audiences, jwks, ...).
    """
    settings = settings or settings_for(database_url)
    fields.setdefault("grant_types", None)
    fields.setdefault("scopes", None)
    checked = registration.registration(
        client_id,
        client_type,
        existing_scopes=settings.scope_set,
        default_scopes=settings.default_client_scope_set,
        max_access_token_ttl_seconds=settings.access_token_ttl_seconds,
        **fields,
    )
    hasher = ClientSecretHasher(settings.key_encryption_key.get_secret_value())
    database = Database(database_url)
    try:
        async with database.db_session() as db:
            created = await clients.create(db, checked, hasher, actor="test", now=utcnow())
    finally:
        await database.dispose()
    return created.secret


async def grant_role(database_url: str, login: str, role: str) -> None:
    """Grant a role as `auth-service accounts grant-role` does."""
    from auth_service import administration

    database = Database(database_url)
    try:
        async with database.db_session() as db:
            account = await administration.find_account(db, login)
            await administration.grant_role(db, account.id, role, actor="test", now=utcnow())
    finally:
        await database.dispose()
