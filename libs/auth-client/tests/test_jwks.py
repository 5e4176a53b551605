"""JwksClient against httpx's MockTransport, counting every fetch it makes."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from auth_client.jwks import JwksClient, parse_key_set, parse_max_age
from testsupport.tokens import JWKS_URL, FakeClock, JwksServer, SigningKey

pytestmark = pytest.mark.anyio

COOLDOWN = 30.0
MAX_STALENESS = 3600.0

ClientFactory = Callable[..., JwksClient]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(signing_key: SigningKey) -> JwksServer:
    return JwksServer(keys=[signing_key.jwk()])


@pytest.fixture
async def make_client(server: JwksServer, clock: FakeClock) -> AsyncIterator[ClientFactory]:
    clients: list[JwksClient] = []
    async with httpx.AsyncClient(transport=server.transport) as http:

        def make(**options: Any) -> JwksClient:
            settings: dict[str, Any] = {
                "min_cache_seconds": 60,
                "max_cache_seconds": 3600,
                "refetch_cooldown_seconds": COOLDOWN,
                "max_staleness_seconds": MAX_STALENESS,
                "retry_seconds": 1,
                **options,
            }
            client = JwksClient(http, JWKS_URL, clock=clock, **settings)
            clients.append(client)
            return client

        yield make
        for client in clients:
            await client.aclose()


async def test_concurrent_verifications_on_a_cold_cache_make_one_fetch(
    make_client: ClientFactory, server: JwksServer, signing_key: SigningKey
) -> None:
    client = make_client()
    keys = await asyncio.gather(*(client.get_key("key-1") for _ in range(50)))
    assert server.fetches == 1
    assert all(key is not None for key in keys)
    assert keys[0].public_numbers() == signing_key.public_key.public_numbers()  # type: ignore[union-attr]
    assert server.requests[0].url == JWKS_URL


async def test_a_known_kid_is_served_from_memory(
    make_client: ClientFactory, server: JwksServer
) -> None:
    client = make_client()
    for _ in range(100):
        assert await client.get_key("key-1") is not None
    assert server.fetches == 1


async def test_a_storm_of_unknown_kids_makes_at_most_one_fetch_per_cooldown(
    make_client: ClientFactory, server: JwksServer, clock: FakeClock
) -> None:
    client = make_client()
    await client.get_key("key-1")
    assert server.fetches == 1

    clock.advance(COOLDOWN)
    found = await asyncio.gather(*(client.get_key(f"forged-{n}") for n in range(200)))
    assert found == [None] * 200
    assert server.fetches == 2  # the concurrent misses shared one fetch

    for second in range(int(COOLDOWN) - 1):
        clock.advance(1)
        assert await client.get_key(f"forged-later-{second}") is None
    assert server.fetches == 2  # nothing more within the cooldown

    clock.advance(1)
    assert await client.get_key("forged-after-cooldown") is None
    assert server.fetches == 3


async def test_rotation_a_new_kid_is_picked_up(
    make_client: ClientFactory,
    server: JwksServer,
    clock: FakeClock,
    signing_key: SigningKey,
    other_key: SigningKey,
) -> None:
    client = make_client()
    assert await client.get_key("key-1") is not None
    clock.advance(COOLDOWN)
    server.keys = [signing_key.jwk(), other_key.jwk()]  # `keys rotate` publishes the next key

    assert await client.get_key("key-2") is not None
    assert server.fetches == 2
    assert await client.get_key("key-1") is not None  # the old key stays usable
    assert server.fetches == 2


async def test_the_cache_control_max_age_is_honoured(
    make_client: ClientFactory, server: JwksServer, clock: FakeClock
) -> None:
    server.cache_control = "public, max-age=120"
    client = make_client()
    await client.get_key("key-1")
    clock.advance(119)
    await client.get_key("key-1")
    await client.wait_idle()
    assert server.fetches == 1

    clock.advance(2)
    assert await client.get_key("key-1") is not None  # answered at once from the held set...
    await client.wait_idle()
    assert server.fetches == 2  # ...while the set was refreshed in the background


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        ("public, max-age=1", 60),  # clamped up to the minimum
        ("no-store", 60),
        (None, 60),
        ("public, max-age=999999", 3600),  # clamped down to the maximum
    ],
)
async def test_max_age_is_clamped_to_the_configured_bounds(
    make_client: ClientFactory,
    server: JwksServer,
    clock: FakeClock,
    cache_control: str | None,
    fresh_for: float,
) -> None:
    server.cache_control = cache_control
    client = make_client()
    await client.get_key("key-1")
    clock.advance(fresh_for - 1)
    await client.get_key("key-1")
    await client.wait_idle()
    assert server.fetches == 1
    clock.advance(2)
    await client.get_key("key-1")
    await client.wait_idle()
    assert server.fetches == 2


async def test_auth_down_serves_the_cached_set_and_logs_it(
    make_client: ClientFactory,
    server: JwksServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_client()
    await client.get_key("key-1")
    server.down = True
    clock.advance(301)  # past max-age: a refresh is due

    with caplog.at_level(logging.INFO, logger="auth_client.jwks"):
        assert await client.get_key("key-1") is not None
        await client.wait_idle()
    assert server.fetches == 2
    assert client.ready
    failure = next(record for record in caplog.records if record.msg == "jwks_fetch_failed")
    assert failure.levelno == logging.WARNING
    assert failure.__dict__["serving_stale_keys"] is True
    assert failure.__dict__["error"] == "ConnectError"
    assert failure.__dict__["stale_for_seconds"] == 1.0

    # While it stays down, refreshes are retried once per cooldown, not per request.
    for _ in range(20):
        clock.advance(1)
        assert await client.get_key("key-1") is not None
    await client.wait_idle()
    assert server.fetches == 2
    clock.advance(COOLDOWN)
    await client.get_key("key-1")
    await client.wait_idle()
    assert server.fetches == 3

    server.down = False
    clock.advance(COOLDOWN)
    await client.get_key("key-1")
    await client.wait_idle()
    assert server.fetches == 4
    clock.advance(1)
    await client.get_key("key-1")
    assert server.fetches == 4  # fresh again


async def test_staleness_is_bounded(
    make_client: ClientFactory, server: JwksServer, clock: FakeClock
) -> None:
    client = make_client()
    await client.get_key("key-1")
    server.down = True
    clock.advance(MAX_STALENESS + 1)
    assert await client.get_key("key-1") is None
    assert not client.ready
    assert not client.has_key("key-1")


async def test_start_up_with_auth_down_is_not_ready_then_recovers(
    make_client: ClientFactory, server: JwksServer, clock: FakeClock
) -> None:
    server.down = True
    client = make_client()
    client.start_loading()
    await client.wait_idle()
    assert not client.ready
    assert await client.load() is False  # within the retry interval: no new fetch
    assert server.fetches == 1

    server.down = False
    clock.advance(1)
    assert await client.load() is True
    assert server.fetches == 2
    assert await client.load() is True
    assert server.fetches == 2


async def test_a_caller_giving_up_does_not_cancel_the_shared_fetch(
    make_client: ClientFactory, server: JwksServer
) -> None:
    server.delay = 0.2
    client = make_client()
    impatient = asyncio.create_task(client.get_key("key-1"))
    patient = asyncio.create_task(client.get_key("key-1"))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert await patient is not None
    assert server.fetches == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"keys": []}'),
        (404, b"not found"),
        (200, b"<html>not json</html>"),
        (200, b'{"no": "keys"}'),
        (200, b'["keys"]'),
    ],
)
async def test_an_unusable_response_leaves_the_client_without_keys(
    make_client: ClientFactory, server: JwksServer, status: int, body: bytes
) -> None:
    server.status_code, server.body = status, body
    client = make_client()
    assert await client.get_key("key-1") is None
    assert not client.ready


def test_only_rs256_signing_keys_are_taken_from_the_set(signing_key: SigningKey) -> None:
    weak = SigningKey.generate("weak", bits=1024)
    private = signing_key.jwk(kid="private")
    private["d"] = "AQAB"
    document = {
        "keys": [
            signing_key.jwk(),
            signing_key.jwk(kid="key-1"),  # a duplicate kid: the first stays
            signing_key.jwk(kid="rs512", alg="RS512"),
            signing_key.jwk(kid="enc", use="enc"),
            signing_key.jwk(kid="no-alg", alg=None),
            {"kty": "oct", "kid": "hmac", "alg": "HS256", "k": "c2VjcmV0"},
            signing_key.jwk(kid="bad-n", n="!!"),
            signing_key.jwk(kid=""),
            signing_key.jwk(kid=7),
            weak.jwk(),
            private,
            "not an object",
        ]
    }
    assert list(parse_key_set(document)) == ["key-1"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("public, max-age=300", 300.0),
        ("max-age=60", 60.0),
        ('max-age="90", public', 90.0),
        ("public, s-maxage=10", None),
        ("public, no-cache", 0.0),
        ("no-store", 0.0),
        ("max-age=abc", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_max_age(header: str | None, expected: float | None) -> None:
    assert parse_max_age(header) == expected


async def test_an_unexpected_failure_of_a_fetch_is_a_logged_miss_not_a_crash(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug somewhere below")

    async with httpx.AsyncClient(transport=httpx.MockTransport(broken)) as http:
        client = JwksClient(http, JWKS_URL, clock=clock)
        with caplog.at_level(logging.INFO, logger="auth_client.jwks"):
            assert await client.get_key("key-1") is None
        assert [record.__dict__["error"] for record in caplog.records] == ["RuntimeError"]
        assert not client.ready


async def test_a_redirect_is_never_followed_whatever_the_http_client_does(
    signing_key: SigningKey, clock: FakeClock
) -> None:
    # An attacker who can make the JWKS URL redirect must not get to choose the keys.
    attacker = SigningKey.generate("key-1")
    requested: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        if request.url.host == "evil.test":
            return httpx.Response(200, json={"keys": [attacker.jwk()]})
        return httpx.Response(302, headers={"Location": "http://evil.test/jwks.json"})

    transport = httpx.MockTransport(handler)
    async with httpx.AsyncClient(transport=transport, follow_redirects=True) as http:
        client = JwksClient(http, JWKS_URL, clock=clock)
        assert await client.get_key("key-1") is None
    assert requested == [JWKS_URL]
    assert not client.ready


async def test_open_makes_its_own_http_client_and_starts_loading(server: JwksServer) -> None:
    async with JwksClient.open(JWKS_URL, transport=server.transport) as client:
        await client.wait_idle()  # returns once the load begun by `open` is done
        assert client.ready
        assert client.has_key("key-1")
    assert server.fetches == 1
    assert server.requests[0].headers["accept"].startswith("application/jwk-set+json")


async def test_open_passes_the_cache_options_on(server: JwksServer, clock: FakeClock) -> None:
    server.cache_control = "public, max-age=999999"
    async with JwksClient.open(
        JWKS_URL, transport=server.transport, max_cache_seconds=120, clock=clock
    ) as client:
        await client.wait_idle()
        clock.advance(121)
        await client.get_key("key-1")
        await client.wait_idle()
    assert server.fetches == 2


async def test_closing_cancels_a_fetch_in_flight(server: JwksServer) -> None:
    server.delay = 30
    async with JwksClient.open(JWKS_URL, transport=server.transport) as client:
        await asyncio.sleep(0.01)
    assert not client.ready
    await asyncio.wait_for(client.wait_idle(), 1)


async def test_a_fetch_is_logged_with_the_kids_it_found(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    with caplog.at_level(logging.INFO, logger="auth_client.jwks"):
        await client.get_key("key-1")
    fetched = next(record for record in caplog.records if record.msg == "jwks_fetched")
    assert fetched.__dict__["kids"] == ["key-1"]
    assert fetched.__dict__["cache_seconds"] == 300
    assert fetched.__dict__["url"] == JWKS_URL


async def test_cache_bounds_out_of_order_are_refused() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError, match="min_cache_seconds"):
            JwksClient(http, JWKS_URL, min_cache_seconds=600, max_cache_seconds=60)
