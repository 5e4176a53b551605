"""Keys the tests make and tokens signed with them, shaped as the auth service issues them."""

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from auth_client import TokenPolicy

ISSUER = "http://127.0.0.1:18000"
AUDIENCE = "auth-platform"
JWKS_URL = "http://127.0.0.1:18001/.well-known/jwks.json"
PUBLIC_CLIENT = "public"
POLICY = TokenPolicy(issuer=ISSUER, audience=AUDIENCE, leeway_seconds=10, max_bytes=8192)


@dataclass
class SigningKey:
    kid: str
    private_key: RSAPrivateKey

    @classmethod
    def generate(cls, kid: str, bits: int = 2048) -> "SigningKey":
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @property
    def public_key(self) -> RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self, **overrides: Any) -> dict[str, Any]:
        """The public JWK, as the auth service publishes it."""
        jwk = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256", **overrides}


def claims_for(subject: uuid.UUID | str | None = None, **overrides: Any) -> dict[str, Any]:
    """A person's access token: an account's `sub`, within a session (`sid`)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": str(subject or uuid.uuid4()),
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "client_id": PUBLIC_CLIENT,
        "scope": "openid profile",
        "roles": ["user"],
        "sid": str(uuid.uuid4()),
    }
    claims.update(overrides)
    return claims


def service_claims_for(client_id: str = "reports", **overrides: Any) -> dict[str, Any]:
    """A service's own token (`client_credentials`): `sub` is the client, no session, no roles."""
    claims = claims_for(client_id, **{"client_id": client_id, "scope": "users:read", **overrides})
    del claims["sid"], claims["roles"]
    return claims


def mint(
    key: SigningKey,
    claims: Mapping[str, Any] | None = None,
    *,
    without: tuple[str, ...] = (),
    headers: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> str:
    """An RS256 access token (RFC 9068 header) signed by `key`."""
    payload = {**(claims or claims_for()), **overrides}
    for name in without:
        payload.pop(name, None)
    header = {"alg": "RS256", "kid": key.kid, "typ": "at+jwt", **(headers or {})}
    return sign(key, b64(header), b64(payload))


def sign(key: SigningKey, header_segment: str, payload_segment: str) -> str:
    """RS256 over whatever segments are given: no library second-guesses a forged token."""
    signing_input = f"{header_segment}.{payload_segment}".encode()
    signature = key.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header_segment}.{payload_segment}.{b64(signature)}"


def b64(data: bytes | str | Mapping[str, Any] | list[Any]) -> str:
    if isinstance(data, Mapping | list):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def segments(token: str) -> list[str]:
    return token.split(".")


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class JwksServer:
    """The auth service's JWKS endpoint, as an `httpx.MockTransport` handler that counts."""

    keys: list[dict[str, Any]]
    cache_control: str | None = "public, max-age=300"
    status_code: int = 200
    down: bool = False
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.01
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def fetches(self) -> int:
        return len(self.requests)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await asyncio.sleep(self.delay)  # a real round trip takes time: concurrent callers overlap
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        headers = {"Cache-Control": self.cache_control} if self.cache_control else {}
        headers.update(self.headers)
        if self.body is not None:
            return httpx.Response(self.status_code, content=self.body, headers=headers)
        return httpx.Response(self.status_code, json={"keys": self.keys}, headers=headers)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class StaticKeys:
    """A fixed key set standing in for the JWKS client (the `KeySource` interface)."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = {key.kid: key.public_key for key in keys}
        self.lookups: list[str] = []

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        self.lookups.append(kid)
        return self.keys.get(kid)

    def has_key(self, kid: str) -> bool:
        return kid in self.keys
