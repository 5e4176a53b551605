"""The in-memory key store: replicas that start together agree on one first key."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from auth_service.clock import utcnow
from auth_service.key_encryption import KeyEncryption
from auth_service.key_store import SigningKeyStore
from auth_service.keys import KeyTimings
from auth_service.models import SigningKey
from service_kit.db import Database

pytestmark = pytest.mark.anyio

ENCRYPTION = KeyEncryption("test-kek")
TIMINGS = KeyTimings(publish_delay=timedelta(seconds=1), retention=timedelta(minutes=16))


def _store(database: Database) -> SigningKeyStore:
    return SigningKeyStore(database, ENCRYPTION, TIMINGS, 300)


async def test_replicas_starting_together_create_exactly_one_key(database: Database) -> None:
    replicas = [_store(database) for _ in range(4)]
    await asyncio.gather(*(replica.bootstrap() for replica in replicas))
    async with database.db_session() as db:
        assert await db.scalar(select(func.count()).select_from(SigningKey)) == 1
    assert len({replica.jwks_etag for replica in replicas}) == 1
    now = utcnow()
    assert len({replica.signing_key(now).kid for replica in replicas}) == 1
