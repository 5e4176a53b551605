"""Client keys the tests make, as public JWKs, and client assertions (RFC 7523) signed with
them."""

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str, **members: str) -> dict[str, Any]:
    """The public half of an RSA key as a JWK (`alg`, `use`... as `members`)."""
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, **members}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str, **members: str) -> dict[str, Any]:
    """The public half of an EC key as a JWK."""
    jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, **members}


def assertion(
    client_id: str,
    key: Any,
    audience: str | list[str],
    *,
    kid: str | None = None,
    algorithm: str = "RS256",
    lifetime: float = 60,
    **claims: Any,
) -> str:
    """A client assertion: `iss` = `sub` = the client, for `audience`, a fresh `jti`.

    `claims` replace or add claims (None removes one)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + int(lifetime),
        "jti": uuid.uuid4().hex,
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    headers = {"kid": kid} if kid else None
    return jwt.encode(body, key, algorithm=algorithm, headers=headers)


def assertion_form(token: str, **form: str) -> dict[str, str]:
    """The form fields of `private_key_jwt`."""
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": token, **form}
