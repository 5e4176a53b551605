"""KEY_ENCRYPTION_KEY outside development: at least 32 random bytes, never a published value;
signing keys encrypted before these rules still decrypt."""

import base64
import os
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from auth_service import kek
from auth_service.jwk import generate_private_key
from auth_service.kek import DEVELOPMENT_KEY_ENCRYPTION_KEY
from auth_service.key_encryption import KeyEncryption
from auth_service.settings import Settings
from testsupport import ROOT

# Files whose KEY_ENCRYPTION_KEY values are published, so never a real secret.
EXAMPLE_FILES = ["compose/env.example", "deploy/settings.example.json", "README.md"]
_ASSIGNED = re.compile(r"""KEY_ENCRYPTION_KEY["']?\s*[=:]\s*["']?([^\s"'`]+)""")


def _examples() -> list[str]:
    values = []
    for name in EXAMPLE_FILES:
        for value in _ASSIGNED.findall((ROOT / name).read_text()):
            if not value.startswith(("$", "<")):  # a shell expansion, not a value
                values.append(value)
    return values


@pytest.mark.parametrize(
    "value",
    [
        kek.generate(),
        os.urandom(32).hex(),
        os.urandom(32).hex().upper(),
        base64.b64encode(os.urandom(48)).decode(),
        base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
    ],
    ids=["generated", "hex", "HEX", "base64", "base64url-unpadded"],
)
def test_random_bytes_as_hex_or_base64_are_accepted(value: str) -> None:
    assert kek.problem_with(value) is None
    Settings(environment="production", key_encryption_key=value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("x", "hex or base64"),
        (DEVELOPMENT_KEY_ENCRYPTION_KEY, "published"),
        ("change-me-key-encryption-key", "published"),
        (os.urandom(16).hex(), "at least 32 bytes"),
        ("not base64 at all, it has spaces", "hex or base64"),
        ("00" * 32, "pattern"),
        ("ab" * 40, "pattern"),
        (base64.b64encode(b"correct horse battery staple, and then some").decode(), "text"),
        ("0123456789abcdef" * 4, "pattern"),
    ],
)
def test_short_patterned_or_published_values_are_refused(value: str, reason: str) -> None:
    problem = kek.problem_with(value)
    assert problem is not None
    assert reason in problem
    with pytest.raises(ValidationError, match="generate-kek"):
        Settings(environment="production", key_encryption_key=value)


def test_every_value_in_the_example_files_is_refused() -> None:
    examples = _examples()
    assert "change-me-key-encryption-key" in examples  # the scan finds what is there
    for value in examples:
        assert kek.problem_with(value) is not None, value


def test_development_accepts_its_default() -> None:
    settings = Settings(environment="development")
    assert settings.key_encryption_key.get_secret_value() == DEVELOPMENT_KEY_ENCRYPTION_KEY


def test_keys_encrypted_before_the_rules_still_decrypt() -> None:
    # The AES key the development default has always derived (HKDF-SHA256 over the text):
    # pinned, so that a change of derivation cannot silently orphan stored signing keys.
    derived = bytes.fromhex("6f08ec929f2b2f3a64d27ce1c43bed2c754c1718e098513b9972573a69477f74")
    private_key = generate_private_key()
    plaintext = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    nonce = os.urandom(12)
    stored = nonce + AESGCM(derived).encrypt(nonce, plaintext, b"kid-1")
    decrypted = KeyEncryption(DEVELOPMENT_KEY_ENCRYPTION_KEY).decrypt("kid-1", stored)
    assert decrypted.private_numbers() == private_key.private_numbers()
