"""RS256 key pairs as JSON Web Keys (RFC 7517), each named by its RFC 7638 thumbprint."""

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ALGORITHM = "RS256"
KEY_BITS = 2048


def generate_private_key() -> rsa.RSAPrivateKey:
    """A new RSA key pair for signing (slow: run it off the event loop)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public half as an RFC 7517 JWK; its kid is the RFC 7638 thumbprint."""
    jwk: dict[str, str] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    kid = thumbprint.rstrip(b"=").decode()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": ALGORITHM, "n": jwk["n"], "e": jwk["e"]}


def public_key_from_jwk(jwk: dict[str, str]) -> rsa.RSAPublicKey:
    """The RSA public key a published JWK holds."""
    key = RSAAlgorithm.from_jwk(jwk)
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("a published key is not an RSA public key")
    return key
