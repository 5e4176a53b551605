"""Signing keys at rest: AES-256-GCM under a key derived from KEY_ENCRYPTION_KEY.

What makes that setting acceptable is `kek`'s business; this module only uses it.
"""

import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_KEK_INFO = b"auth-service signing-key encryption v1"


class KeyEncryption:
    """AES-256-GCM under a key derived (HKDF-SHA256) from the KEY_ENCRYPTION_KEY setting.

    The kid is the associated data, so a ciphertext cannot be moved to another key's row.
    """

    def __init__(self, key_encryption_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEK_INFO).derive(
            key_encryption_key.encode("utf-8")
        )
        self._aead = AESGCM(derived)

    def encrypt(self, kid: str, private_key: rsa.RSAPrivateKey) -> bytes:
        """The private key (PKCS #8 DER) sealed under a fresh nonce, bound to `kid`."""
        plaintext = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, kid: str, blob: bytes) -> rsa.RSAPrivateKey:
        """The private key `encrypt` sealed for `kid`; `InvalidTag` for any other blob."""
        plaintext = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kid.encode())
        key = serialization.load_der_private_key(plaintext, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("a signing key is not an RSA key")
        return key
