"""What makes a KEY_ENCRYPTION_KEY acceptable outside development, and a fresh one.

The key-encryption key must be at least 32 random bytes, written as hex or base64
(standard or URL-safe, padding optional): `auth-service keys generate-kek` prints one.
Refused: anything shorter, anything that is not such an encoding, bytes that are plainly
not random (few distinct values, or printable text: an encoded passphrase), and every
value published in this repository (the development default, the example files').

The AES key is derived from the setting's text with HKDF-SHA256 (`key_encryption.KeyEncryption`),
as it always was: signing keys encrypted before these rules existed still decrypt under
the same setting, the development default included.
"""

import base64
import binascii
import re
import secrets

MIN_BYTES = 32
# 32 random bytes hold about 30 distinct values; fewer than this is a pattern.
MIN_DISTINCT_BYTES = 16

# Published values: the settings' development default and the example files' placeholders.
DEVELOPMENT_KEY_ENCRYPTION_KEY = "development-only-key-encryption-key-change-me"
PUBLISHED_VALUES = frozenset(
    {
        DEVELOPMENT_KEY_ENCRYPTION_KEY,
        "change-me-key-encryption-key",  # compose/env.example
    }
)

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_BASE64_URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def generate() -> str:
    """A fresh key-encryption key: 32 random bytes, URL-safe base64 without padding."""
    return secrets.token_urlsafe(MIN_BYTES)


def decode(value: str) -> bytes | None:
    """The bytes a hex or base64 (standard or URL-safe) value stands for; None otherwise."""
    if _HEX.fullmatch(value):
        return bytes.fromhex(value)
    for pattern, altchars in ((_BASE64, None), (_BASE64_URL, b"-_")):
        if pattern.fullmatch(value):
            padded = value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4)
            try:
                return base64.b64decode(padded, altchars=altchars, validate=True)
            except binascii.Error:
                return None
    return None


def problem_with(value: str) -> str | None:
    """Why `value` may not be the key-encryption key outside development; None if it may."""
    if value in PUBLISHED_VALUES:
        return "it is a value published in this repository (a default or an example)"
    raw = decode(value)
    if raw is None:
        return "it must be hex or base64 (standard or URL-safe)"
    if len(raw) < MIN_BYTES:
        return f"it must encode at least {MIN_BYTES} bytes, not {len(raw)}"
    if len(set(raw)) < MIN_DISTINCT_BYTES:
        return "its bytes are a pattern, not random"
    if all(0x20 <= byte < 0x7F for byte in raw):
        return "it encodes text (a passphrase), not random bytes"
    return None
