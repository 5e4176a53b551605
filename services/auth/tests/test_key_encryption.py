"""Signing keys at rest: encrypted, and bound to their kid."""

from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from auth_service.key_encryption import KeyEncryption
from auth_service.key_store import SigningKeyStore
from auth_service.keys import KeyTimings
from auth_service.models import SigningKey
from service_kit.db import Database

pytestmark = pytest.mark.anyio

ENCRYPTION = KeyEncryption("test-kek")
TIMINGS = KeyTimings(publish_delay=timedelta(seconds=1), retention=timedelta(minutes=16))


async def test_private_keys_are_encrypted_and_bound_to_their_kid(database: Database) -> None:
    store = SigningKeyStore(database, ENCRYPTION, TIMINGS, 300)
    await store.bootstrap()
    async with database.db_session() as db:
        row = (await db.scalars(select(SigningKey))).one()
    assert b"PRIVATE" not in row.private_key_encrypted
    assert ENCRYPTION.decrypt(row.kid, row.private_key_encrypted).key_size == 2048
    with pytest.raises(InvalidTag):
        KeyEncryption("another-kek").decrypt(row.kid, row.private_key_encrypted)
    with pytest.raises(InvalidTag):
        ENCRYPTION.decrypt("another-kid", row.private_key_encrypted)
