"""A service calling another in its own name: `client_credentials` tokens as an `httpx.Auth`.

`ClientCredentialsAuth` gets an access token from the token endpoint (RFC 6749 §4.4), keeps
it, and puts it on every request. It renews the token shortly before it expires, one request
at a time however many calls wait for it (a thread lock for `httpx.Client`, an async lock for
`httpx.AsyncClient`), and when a resource server still answers 401 (the token was revoked,
or its key retired) it drops the token and retries the request once with a new one.

The client authenticates to the token endpoint with `client_secret_basic` (the default),
`client_secret_post`, or `private_key_jwt` (RFC 7523). Token requests go out on an HTTP
client of their own, never following redirects, so neither the client's credentials nor the
token ever reach anything but the token endpoint, nor appear in a response's history.
"""

import base64
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus

import anyio
import httpx
import jwt

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 60
# A token lasting less than this renews at half its life instead.
DEFAULT_RENEW_BEFORE_SECONDS = 30.0
# When the token endpoint does not say how long a token lasts (RFC 6749 makes it optional).
ASSUMED_LIFETIME_SECONDS = 60
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024


class TokenEndpointError(Exception):
    """The token endpoint refused (RFC 6749 §5.2 `error`, when it said one) or answered nonsense."""

    def __init__(self, status_code: int, error: str | None, description: str | None) -> None:
        self.status_code = status_code
        self.error = error
        self.description = description
        message = f"token endpoint answered {status_code}"
        if error:
            message += f": {error}" + (f" ({description})" if description else "")
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from the `client_credentials` grant, fetched, cached and renewed."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        scope: str | None = None,
        resource: str | None = None,
        method: ClientAuthMethod = "client_secret_basic",
        private_key: Any = None,
        key_id: str | None = None,
        assertion_algorithm: str = "RS256",
        renew_before_seconds: float = DEFAULT_RENEW_BEFORE_SECONDS,
        timeout_seconds: float = 10,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`scope` is space-separated; `resource` (RFC 8707) picks the token's audience.

        `private_key` (a PEM or a `cryptography` key) and `key_id` are for `private_key_jwt`;
        `transport` replaces the network for token requests (tests: `httpx.MockTransport`).
        """
        if method == "private_key_jwt":
            if private_key is None:
                raise ValueError("private_key_jwt needs a private_key")
        elif not client_secret:
            raise ValueError(f"{method} needs a client_secret")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._resource = resource
        self._method = method
        self._private_key = private_key
        self._key_id = key_id
        self._algorithm = assertion_algorithm
        self._renew_before = renew_before_seconds
        self._timeout = timeout_seconds
        self._transport = transport
        self._clock = clock
        self._token: _Token | None = None
        self._sync_lock = threading.RLock()
        self._async_lock = anyio.Lock()
        self.token_requests = 0
        """Token requests made so far."""

    def __repr__(self) -> str:  # never the secret, never the token
        name = type(self).__name__
        return f"{name}({self.token_url!r}, {self.client_id!r}, method={self._method!r})"

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Send `request` with a token; once more with a new token if it meets a 401."""
        token = self._sync_token(refused=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and _replayable(request):
            request.headers["Authorization"] = f"Bearer {self._sync_token(refused=token)}"
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """As `sync_auth_flow`, for `httpx.AsyncClient`."""
        token = await self._async_token(refused=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and _replayable(request):
            request.headers["Authorization"] = f"Bearer {await self._async_token(refused=token)}"
            yield request

    def _sync_token(self, refused: str | None) -> str:
        with self._sync_lock:
            held = self._usable(refused)
            if held is not None:
                return held
            requested_at = self._clock()
            transport = self._transport
            if transport is not None and not isinstance(transport, httpx.BaseTransport):
                raise TypeError("an httpx.Client needs a synchronous transport")
            with httpx.Client(
                transport=transport, timeout=self._timeout, follow_redirects=False
            ) as http:
                self.token_requests += 1
                response = http.send(self._token_request())
                response.read()
            return self._keep(response, requested_at)

    async def _async_token(self, refused: str | None) -> str:
        async with self._async_lock:
            held = self._usable(refused)
            if held is not None:
                return held
            requested_at = self._clock()
            transport = self._transport
            if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
                raise TypeError("an httpx.AsyncClient needs an asynchronous transport")
            async with httpx.AsyncClient(
                transport=transport, timeout=self._timeout, follow_redirects=False
            ) as http:
                self.token_requests += 1
                response = await http.send(self._token_request())
                await response.aread()
            return self._keep(response, requested_at)

    def _usable(self, refused: str | None) -> str | None:
        # The held token, unless it is due for renewal or is the one a server just refused
        # (another caller may have renewed it meanwhile: that newer one is used as is).
        token = self._token
        if token is None or token.value == refused or self._clock() >= token.renew_at:
            return None
        return token.value

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        if self._resource:
            form["resource"] = self._resource
        headers = {"Accept": "application/json"}
        if self._method == "client_secret_basic":
            assert self._secret is not None
            # RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(self._secret)}"
            headers["Authorization"] = f"Basic {base64.b64encode(pair.encode()).decode()}"
        elif self._method == "client_secret_post":
            assert self._secret is not None
            form.update(client_id=self.client_id, client_secret=self._secret)
        else:
            form.update(
                client_id=self.client_id,
                client_assertion_type=ASSERTION_TYPE,
                client_assertion=self._assertion(),
            )
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def _assertion(self) -> str:
        """RFC 7523 §3: issued by and about the client, for the token endpoint, short-lived."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._private_key, self._algorithm, headers=headers)

    def _keep(self, response: httpx.Response, requested_at: float) -> str:
        body = _json_object(response)
        if response.status_code != 200:
            error, description = body.get("error"), body.get("error_description")
            raise TokenEndpointError(
                response.status_code,
                error if isinstance(error, str) else None,
                description if isinstance(description, str) else None,
            )
        value, token_type = body.get("access_token"), body.get("token_type")
        if not isinstance(value, str) or not value:
            raise TokenEndpointError(200, None, "no access_token in the answer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise TokenEndpointError(200, None, "not a Bearer token")
        lifetime = body.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int) or lifetime <= 0:
            lifetime = ASSUMED_LIFETIME_SECONDS
        # Counted from when the request left: the token's clock started no later than that.
        renew_at = requested_at + lifetime - min(self._renew_before, lifetime / 2)
        self._token = _Token(value, renew_at)
        return value


def _json_object(response: httpx.Response) -> dict[str, Any]:
    if len(response.content) > MAX_TOKEN_RESPONSE_BYTES:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _replayable(request: httpx.Request) -> bool:
    # A streamed body has been consumed by the first attempt; bytes can be sent again.
    return isinstance(request.stream, httpx.ByteStream)
