"""ClientCredentialsAuth against httpx.MockTransport: a token endpoint and a resource server."""

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auth_client import ClientCredentialsAuth, TokenEndpointError
from testsupport.tokens import FakeClock

TOKEN_URL = "https://auth.test/auth/token"
API = "https://users.test"
CLIENT_ID = "reports"
SECRET = "s3cr3t-0123456789_abcdefghijklmnopqrstuvwxyz"


@dataclass
class Platform:
    """A token endpoint and a resource server that accepts the tokens it has not revoked."""

    expires_in: Any = 900
    token_answer: httpx.Response | None = None
    revoked: set[str] = field(default_factory=set)
    delay: float = 0.0
    token_requests: list[httpx.Request] = field(default_factory=list)
    api_requests: list[httpx.Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if request.url.host == "auth.test":
                self.token_requests.append(request)
                issued = f"token-{len(self.token_requests)}"
            else:
                self.api_requests.append(request)
        if request.url.host == "auth.test":
            time.sleep(self.delay)
            if self.token_answer is not None:
                return self.token_answer
            body = {"access_token": issued, "token_type": "Bearer", "scope": "users:read"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body, headers={"Cache-Control": "no-store"})
        if request.url.host != "users.test":
            return httpx.Response(599)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.revoked:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return httpx.Response(200, json={"token": token})

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            await asyncio.sleep(self.delay)  # a real round trip: concurrent callers overlap
        return self.handle(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    def form(self, index: int = 0) -> dict[str, str]:
        parsed = parse_qs(self.token_requests[index].content.decode(), strict_parsing=True)
        return {name: values[0] for name, values in parsed.items()}


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def auth_for(platform: Platform, clock: FakeClock | None = None, **options: Any) -> Any:
    settings: dict[str, Any] = {"scope": "users:read", "transport": platform.transport, **options}
    if clock is not None:
        settings["clock"] = clock
    return ClientCredentialsAuth(TOKEN_URL, CLIENT_ID, SECRET, **settings)


@pytest.fixture
def api(platform: Platform, clock: FakeClock) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=API, transport=platform.transport, auth=auth_for(platform, clock)
    ) as client:
        yield client


def test_a_token_is_fetched_with_client_secret_basic_and_sent_as_bearer(
    platform: Platform, api: httpx.Client
) -> None:
    response = api.get("/users")
    assert response.json() == {"token": "token-1"}
    token_request = platform.token_requests[0]
    assert token_request.method == "POST"
    assert str(token_request.url) == TOKEN_URL
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert platform.form() == {"grant_type": "client_credentials", "scope": "users:read"}
    expected = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert token_request.headers["authorization"] == f"Basic {expected}"
    assert platform.api_requests[0].headers["authorization"] == "Bearer token-1"


def test_basic_credentials_are_form_encoded_first(platform: Platform) -> None:
    # RFC 6749 §2.3.1; a secret with reserved characters would otherwise split wrongly.
    auth = ClientCredentialsAuth(TOKEN_URL, "svc:1", "a+b/c=:", transport=platform.transport)
    with httpx.Client(transport=platform.transport, auth=auth) as client:
        client.get(f"{API}/users")
    encoded = platform.token_requests[0].headers["authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded).decode() == "svc%3A1:a%2Bb%2Fc%3D%3A"


def test_client_secret_post_puts_the_credentials_in_the_form(platform: Platform) -> None:
    auth = auth_for(platform, method="client_secret_post", resource="https://users.test")
    with httpx.Client(transport=platform.transport, auth=auth) as client:
        client.get(f"{API}/users")
    assert "authorization" not in platform.token_requests[0].headers
    assert platform.form() == {
        "grant_type": "client_credentials",
        "scope": "users:read",
        "resource": "https://users.test",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }


def test_private_key_jwt_sends_a_fresh_short_assertion_each_time(
    platform: Platform, clock: FakeClock
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = ClientCredentialsAuth(
        TOKEN_URL,
        CLIENT_ID,
        method="private_key_jwt",
        private_key=key,
        key_id="reports-key-1",
        transport=platform.transport,
        clock=clock,
    )
    with httpx.Client(transport=platform.transport, auth=auth) as client:
        client.get(f"{API}/users")
        clock.advance(3600)
        client.get(f"{API}/users")
    forms = [platform.form(0), platform.form(1)]
    jtis = set()
    for form in forms:
        assert "authorization" not in platform.token_requests[0].headers
        assert form["client_assertion_type"] == (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        )
        assert form["client_id"] == CLIENT_ID
        assertion = form["client_assertion"]
        assert jwt.get_unverified_header(assertion)["kid"] == "reports-key-1"
        claims = jwt.decode(
            assertion,
            key.public_key(),
            algorithms=["RS256"],
            audience=TOKEN_URL,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        )
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert 0 < claims["exp"] - claims["iat"] <= 60
        jtis.add(claims["jti"])
    assert len(jtis) == 2  # a jti is single use


def test_the_token_is_reused_until_shortly_before_it_expires(
    platform: Platform, api: httpx.Client, clock: FakeClock
) -> None:
    for _ in range(5):
        assert api.get("/users").json() == {"token": "token-1"}
    clock.advance(900 - 30 - 1)
    assert api.get("/users").json() == {"token": "token-1"}
    clock.advance(1)  # 30 s before expiry: renewed
    assert api.get("/users").json() == {"token": "token-2"}
    assert len(platform.token_requests) == 2


def test_a_short_lived_token_renews_at_half_its_life(
    platform: Platform, api: httpx.Client, clock: FakeClock
) -> None:
    platform.expires_in = 20
    api.get("/users")
    clock.advance(9.9)
    assert api.get("/users").json() == {"token": "token-1"}
    clock.advance(0.1)
    assert api.get("/users").json() == {"token": "token-2"}


@pytest.mark.parametrize("expires_in", [None, 0, -5, "900", True, 1.5])
def test_a_token_without_a_usable_lifetime_is_kept_a_minute(
    platform: Platform, api: httpx.Client, clock: FakeClock, expires_in: Any
) -> None:
    platform.expires_in = expires_in
    api.get("/users")
    clock.advance(29)
    assert api.get("/users").json() == {"token": "token-1"}
    clock.advance(1)
    assert api.get("/users").json() == {"token": "token-2"}


@pytest.mark.anyio
async def test_concurrent_async_requests_share_one_token_request(platform: Platform) -> None:
    platform.delay = 0.05
    auth = auth_for(platform, transport=platform.async_transport)
    async with httpx.AsyncClient(
        base_url=API, transport=platform.async_transport, auth=auth
    ) as client:
        responses = await asyncio.gather(*(client.get("/users") for _ in range(20)))
    assert {response.json()["token"] for response in responses} == {"token-1"}
    assert len(platform.token_requests) == 1


def test_concurrent_threads_share_one_token_request(platform: Platform) -> None:
    platform.delay = 0.05
    tokens: list[str] = []
    with httpx.Client(
        base_url=API, transport=platform.transport, auth=auth_for(platform)
    ) as client:

        def call() -> None:
            tokens.append(client.get("/users").json()["token"])

        threads = [threading.Thread(target=call) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert tokens == ["token-1"] * 10
    assert len(platform.token_requests) == 1


def test_a_401_drops_the_token_and_retries_once_with_a_new_one(
    platform: Platform, api: httpx.Client
) -> None:
    api.get("/users")
    platform.revoked.add("token-1")
    response = api.post("/users/search", json={"name": "ada"})
    assert response.status_code == 200
    assert response.json() == {"token": "token-2"}
    # The refused attempt is in the history, as httpx keeps it; no token answer ever is.
    assert [(past.status_code, past.url.host) for past in response.history] == [(401, "users.test")]
    retried = platform.api_requests[-1]
    assert retried.headers["authorization"] == "Bearer token-2"
    assert retried.content == b'{"name":"ada"}'  # the same body, sent again
    assert len(platform.token_requests) == 2


def test_a_second_401_is_the_answer_not_a_loop(platform: Platform, api: httpx.Client) -> None:
    platform.revoked.update({"token-1", "token-2", "token-3"})
    response = api.get("/users")
    assert response.status_code == 401
    assert len(platform.api_requests) == 2
    assert len(platform.token_requests) == 2


@pytest.mark.anyio
async def test_callers_refused_together_renew_once(platform: Platform) -> None:
    auth = auth_for(platform, transport=platform.async_transport)
    async with httpx.AsyncClient(
        base_url=API, transport=platform.async_transport, auth=auth
    ) as client:
        await client.get("/users")
        platform.revoked.add("token-1")
        platform.delay = 0.05
        responses = await asyncio.gather(*(client.get("/users") for _ in range(5)))
    assert {response.json()["token"] for response in responses} == {"token-2"}
    assert len(platform.token_requests) == 2


class StreamingTransport(httpx.BaseTransport):
    """Reads a request body as a network transport does: once, keeping nothing."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.bodies: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "users.test":
            assert isinstance(request.stream, httpx.SyncByteStream)
            self.bodies.append(b"".join(request.stream))
        return self.platform.handle(request)


def test_a_streamed_body_is_not_sent_twice(platform: Platform, clock: FakeClock) -> None:
    transport = StreamingTransport(platform)
    auth = auth_for(platform, clock, transport=platform.transport)
    with httpx.Client(base_url=API, transport=transport, auth=auth) as client:
        client.get("/users")
        platform.revoked.add("token-1")
        response = client.post("/upload", content=iter([b"part one, ", b"part two"]))
    assert response.status_code == 401  # answered as it came: the body cannot be sent again
    assert transport.bodies[-1] == b"part one, part two"
    assert len(platform.api_requests) == 2
    assert len(platform.token_requests) == 1


def test_a_refusal_by_the_token_endpoint_is_raised_with_its_error_code(
    platform: Platform, api: httpx.Client
) -> None:
    platform.token_answer = httpx.Response(
        401,
        json={"error": "invalid_client", "error_description": "Client authentication failed."},
        headers={"WWW-Authenticate": 'Basic realm="token"'},
    )
    with pytest.raises(TokenEndpointError) as caught:
        api.get("/users")
    assert caught.value.status_code == 401
    assert caught.value.error == "invalid_client"
    assert SECRET not in str(caught.value)
    assert platform.api_requests == []  # no request went out without a token

    platform.token_answer = None  # the endpoint recovers: the next call gets a token
    assert api.get("/users").json() == {"token": "token-2"}


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json={"token_type": "Bearer", "expires_in": 60}),
        httpx.Response(200, json={"access_token": "", "token_type": "Bearer"}),
        httpx.Response(200, json={"access_token": "t", "token_type": "DPoP"}),
        httpx.Response(200, json={"access_token": "t"}),
        httpx.Response(307, headers={"Location": "https://elsewhere.test/token"}),
    ],
)
def test_a_token_endpoint_answer_that_is_not_a_bearer_token_is_an_error(
    platform: Platform, api: httpx.Client, answer: httpx.Response
) -> None:
    platform.token_answer = answer
    with pytest.raises(TokenEndpointError):
        api.get("/users")
    # A redirect is never followed: the credentials go to the token endpoint only.
    assert {request.url.host for request in platform.token_requests} == {"auth.test"}


def test_the_token_type_is_matched_without_regard_to_case(
    platform: Platform, api: httpx.Client
) -> None:
    platform.token_answer = httpx.Response(
        200, json={"access_token": "lower", "token_type": "bearer", "expires_in": 60}
    )
    assert api.get("/users").json() == {"token": "lower"}


def test_the_auth_never_shows_its_secret() -> None:
    auth = ClientCredentialsAuth(TOKEN_URL, CLIENT_ID, SECRET)
    assert SECRET not in repr(auth)
    assert CLIENT_ID in repr(auth)


@pytest.mark.parametrize(
    ("secret", "options"),
    [
        (None, {}),
        ("", {}),
        (None, {"method": "client_secret_post"}),
        (SECRET, {"method": "private_key_jwt"}),
    ],
)
def test_missing_credentials_are_refused_at_construction(
    secret: str | None, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="needs a"):
        ClientCredentialsAuth(TOKEN_URL, CLIENT_ID, secret, **options)
