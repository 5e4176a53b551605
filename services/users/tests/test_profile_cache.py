"""Each replica's cache of `/users/me`: a write shows at once on the writer's replica and, by
PostgreSQL notification, on every other within a second; a stale read is never kept; a lost
listener empties the cache and bypasses it until it is back."""

import asyncio
import time
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import make_url

from service_kit.notifications import NotificationListener
from testsupport.apps import serving
from testsupport.databases import admin_execute
from testsupport.tokens import JwksServer, SigningKey, claims_for, mint
from testsupport.users_service import settings_for
from users_service.main import create_app
from users_service.profile_cache import ProfileCache

pytestmark = pytest.mark.anyio

PROPAGATION_BOUND_SECONDS = 1.0


def test_a_read_begun_before_an_invalidation_is_not_kept() -> None:
    cache, account = ProfileCache(10, 60), uuid.uuid4()
    generation = cache.generation
    cache.invalidate(account)  # a write committed while the read was under way
    cache.put(account, b"old", generation)
    assert cache.get(account) is None
    cache.put(account, b"new", cache.generation)
    assert cache.get(account) == b"new"


def test_entries_expire_are_bounded_and_go_while_the_cache_is_not_trusted() -> None:
    now, trusted = [0.0], [True]
    cache = ProfileCache(2, 60, active=lambda: trusted[0], clock=lambda: now[0])
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for account in (first, second, third):
        cache.put(account, b"x", cache.generation)
    assert cache.get(first) is None  # the oldest made room
    assert cache.get(third) == b"x"
    now[0] = 61
    assert cache.get(third) is None
    cache.put(third, b"x", cache.generation)
    trusted[0] = False
    assert cache.get(third) is None
    cache.put(third, b"x", cache.generation)
    trusted[0] = True
    assert cache.get(third) is None  # nothing was kept while it was not trusted


def _replicas(url: str, jwks_server: JwksServer) -> tuple[FastAPI, FastAPI]:
    """Two replicas of the users service on one database."""
    settings = settings_for(url)
    return tuple(create_app(settings, jwks_transport=jwks_server.transport) for _ in range(2))  # type: ignore[return-value]


def _listener(app: FastAPI) -> NotificationListener:
    listener: NotificationListener = app.state.profile_cache_listener
    return listener


def _bearer(key: SigningKey, account: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(key, claims_for(account))}"}


async def _name_within(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, seconds: float
) -> float:
    """Seconds until `GET /users/me` shows `name` (fails past `seconds`)."""
    started = time.monotonic()
    while (await client.get("/users/me", headers=headers)).json()["display_name"] != name:
        assert time.monotonic() - started < seconds, f"{name!r} not seen within {seconds}s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def postgres_url(backend: str, database_url: str) -> str:
    if backend != "postgresql":
        pytest.skip("replicas share PostgreSQL: notifications need it")
    return database_url


async def test_a_patch_on_one_replica_shows_on_the_other_within_a_second(
    postgres_url: str, jwks_server: JwksServer, signing_key: SigningKey
) -> None:
    account = uuid.uuid4()
    headers = _bearer(signing_key, account)
    apps = _replicas(postgres_url, jwks_server)
    async with (
        serving(apps[0], "http://one.test") as one,
        serving(apps[1], "http://two.test") as two,
    ):
        for app in apps:
            assert await _listener(app).wait_live(5)
        assert (await two.get("/users/me", headers=headers)).json()["display_name"] is None
        assert (await two.get("/users/me", headers=headers)).json()["display_name"] is None

        for name in ("Ada", "Grace", "Edsger"):
            patched = await one.patch("/users/me", json={"display_name": name}, headers=headers)
            assert patched.json()["display_name"] == name
            # Read-your-writes on the writer's replica: at once, no waiting.
            assert (await one.get("/users/me", headers=headers)).json()["display_name"] == name
            await _name_within(two, headers, name, PROPAGATION_BOUND_SECONDS)


async def test_a_lost_listener_empties_the_cache_and_bypasses_it_until_it_is_back(
    postgres_url: str, jwks_server: JwksServer, signing_key: SigningKey
) -> None:
    account = uuid.uuid4()
    headers = _bearer(signing_key, account)
    database = make_url(postgres_url).database
    apps = _replicas(postgres_url, jwks_server)
    async with (
        serving(apps[0], "http://one.test") as one,
        serving(apps[1], "http://two.test") as two,
    ):
        listener = _listener(apps[1])
        assert await listener.wait_live(5)
        await two.get("/users/me", headers=headers)  # cached on two
        terminate = (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608 - our names
            f"WHERE application_name = '{listener.name}' AND datname = '{database}'"
        )
        admin_execute(terminate)
        started = time.monotonic()
        while listener.live:
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.01)
        # While two cannot hear, a write on one must still show there: it reads the database.
        await one.patch("/users/me", json={"display_name": "Barbara"}, headers=headers)
        assert (await two.get("/users/me", headers=headers)).json()["display_name"] == "Barbara"
        assert await listener.wait_live(5)
        await one.patch("/users/me", json={"display_name": "Frances"}, headers=headers)
        await _name_within(two, headers, "Frances", PROPAGATION_BOUND_SECONDS)
