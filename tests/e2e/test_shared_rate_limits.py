"""Two gateway replicas sharing one Redis enforce one rate limit, not one each.

Both are real Traefik processes (the stack's own and one more, started as every deployment
starts it) in front of the same services. The machine's Redis is used when it answers
(`TEST_REDIS_URL`, default database 15 on 127.0.0.1:6379); each test's client address is its
own, so its bucket is too. Without a Redis the test is skipped; under `CI=true` a Redis that
listens but cannot be used fails it, as an unusable PostgreSQL does.
"""

import os
import random
import time
from collections.abc import Iterator

import httpx
import pytest

from testsupport.redis import redis_command, redis_listening, redis_url_for_tests
from testsupport.stack import EXTERNAL_GATEWAY_URL, Stack, extra_gateway, free_port, running_stack

AVERAGE = 1  # per second
BURST = 10
ATTEMPTS = 40


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = redis_url_for_tests()
    if not redis_listening(url):
        pytest.skip(f"no Redis listening at {url} (TEST_REDIS_URL)")
    try:
        redis_command(url, "PING")
    except (OSError, RuntimeError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is listening but unusable under CI: {exc!r}")
        pytest.skip(f"Redis unusable: {exc!r}")
    return url


@pytest.fixture(scope="module")
def limited_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose gateway counts in Redis and believes the X-Forwarded-For of 127.0.0.1."""
    if EXTERNAL_GATEWAY_URL:
        pytest.skip("needs a stack of its own; the gateway under test is external")
    workdir = tmp_path_factory.mktemp("shared-limits")
    databases = (
        f"sqlite+aiosqlite:///{workdir / 'auth.sqlite3'}",
        f"sqlite+aiosqlite:///{workdir / 'users.sqlite3'}",
    )
    with running_stack(
        databases,
        workdir,
        GATEWAY_REDIS_URL=redis_url,
        GATEWAY_RATE_AVERAGE=str(AVERAGE),
        GATEWAY_RATE_BURST=str(BURST),
        GATEWAY_TRUSTED_IPS="127.0.0.1/32",
        GATEWAY_CLIENT_IP_DEPTH="1",
    ) as stack:
        yield stack


def _client_address() -> str:
    # 198.18.0.0/15 is for benchmarks and tests (RFC 2544): never a real client.
    return f"198.{random.randint(18, 19)}.{random.randint(0, 255)}.{random.randint(1, 254)}"


def _allowed_per_gateway(gateways: list[str], address: str) -> tuple[list[int], float]:
    """Alternate registrations over the gateways; how many each let through, and the time."""
    allowed = [0] * len(gateways)
    refused = [0] * len(gateways)
    started = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for attempt in range(ATTEMPTS):
            index = attempt % len(gateways)
            response = client.post(
                f"{gateways[index]}/auth/register",
                json={},  # a 422 from auth: cheap, and past the rate limit
                headers={"X-Forwarded-For": address},
            )
            if response.status_code == 429:
                refused[index] += 1
            else:
                assert response.status_code == 422, response.text
                allowed[index] += 1
    assert all(refused), f"some gateway never refused: {refused}"
    return allowed, time.monotonic() - started


def test_two_gateways_sharing_redis_enforce_one_limit(limited_stack: Stack, redis_url: str) -> None:
    address = _client_address()
    try:
        with extra_gateway(
            limited_stack,
            GATEWAY_REDIS_URL=redis_url,
            GATEWAY_RATE_AVERAGE=str(AVERAGE),
            GATEWAY_RATE_BURST=str(BURST),
            GATEWAY_TRUSTED_IPS="127.0.0.1/32",
            GATEWAY_CLIENT_IP_DEPTH="1",
        ) as second:
            allowed, elapsed = _allowed_per_gateway([limited_stack.url, second], address)
    finally:
        redis_command(redis_url, "DEL", f"rate:rate-limit@file:{address}")
    # One bucket: the burst, plus what refilled meanwhile, whichever gateway was asked.
    assert all(allowed), f"each gateway let some through: {allowed}"
    assert BURST <= sum(allowed) <= BURST + AVERAGE * elapsed + 1, (allowed, elapsed)


def test_without_redis_each_gateway_counts_alone(limited_stack: Stack) -> None:
    """The control: the same two gateways, counting in memory, let twice the burst through."""
    settings = {
        "GATEWAY_REDIS_URL": "",
        "GATEWAY_RATE_AVERAGE": str(AVERAGE),
        "GATEWAY_RATE_BURST": str(BURST),
        "GATEWAY_TRUSTED_IPS": "127.0.0.1/32",
        "GATEWAY_CLIENT_IP_DEPTH": "1",
    }
    with (
        extra_gateway(limited_stack, **settings) as first,
        extra_gateway(limited_stack, **settings) as second,
    ):
        allowed, elapsed = _allowed_per_gateway([first, second], _client_address())
    assert sum(allowed) >= 2 * BURST, (allowed, elapsed)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rediss://gateway:s3cret@cache.example.invalid:6380/3",
            {"endpoints": ["cache.example.invalid:6380"], "db": 3, "username": "gateway"},
        ),
        ("redis://cache.example.invalid", {"endpoints": ["cache.example.invalid:6379"]}),
    ],
)
def test_the_redis_url_gives_the_rate_limiter_its_server(
    limited_stack: Stack, url: str, expected: dict[str, object]
) -> None:
    internal_port = free_port()
    with extra_gateway(
        limited_stack, GATEWAY_REDIS_URL=url, GATEWAY_INTERNAL_PORT=str(internal_port)
    ):
        middleware = httpx.get(
            f"http://127.0.0.1:{internal_port}/api/http/middlewares/rate-limit@file", timeout=5
        ).json()
    redis = middleware["rateLimit"]["redis"]
    assert {key: redis.get(key) for key in expected} == expected
    assert ("tls" in redis) == url.startswith("rediss://")
    assert redis["readTimeout"] == redis["dialTimeout"] == "500ms"
