"""Signing keys' lifecycle: rotation, retirement and revocation, as replicas load them."""

import asyncio
from datetime import timedelta

import jwt
import pytest

from auth_service import keys
from auth_service.clock import utcnow
from auth_service.key_encryption import KeyEncryption
from auth_service.key_store import SigningKeyStore
from auth_service.keys import KeyOperationError, KeyTimings
from auth_service.models import SigningKey
from service_kit.db import Database

pytestmark = pytest.mark.anyio

ENCRYPTION = KeyEncryption("test-kek")
TIMINGS = KeyTimings(publish_delay=timedelta(seconds=1), retention=timedelta(minutes=16))


def _store(database: Database) -> SigningKeyStore:
    return SigningKeyStore(database, ENCRYPTION, TIMINGS, 300)


def _kids(store: SigningKeyStore) -> list[str]:
    # Parsed by a stock client, as a verifier would.
    return [str(key.key_id) for key in jwt.PyJWKSet.from_json(store.jwks_body.decode()).keys]


async def test_rotation_publishes_first_signs_later_and_keeps_the_old_key(
    database: Database,
) -> None:
    store = _store(database)
    await store.bootstrap()
    old = store.signing_key(utcnow()).kid
    async with database.db_session() as db:
        new = (await keys.rotate(db, ENCRYPTION, TIMINGS)).kid
        await db.commit()
    await store.reload()
    assert _kids(store) == [old, new]
    assert store.signing_key(utcnow()).kid == old  # published, not signing yet

    await asyncio.sleep(1.1)
    await store.reload()
    assert store.signing_key(utcnow()).kid == new
    assert _kids(store) == [old, new]  # the old key verifies what it signed
    async with database.db_session() as db:
        retired = await db.get(SigningKey, old)
        assert retired is not None
        assert retired.state == "retired"
        assert retired.retired_at is not None
        assert retired.published_until == retired.retired_at + TIMINGS.retention


async def test_the_signing_key_cannot_be_retired_a_next_key_can(database: Database) -> None:
    store = _store(database)
    await store.bootstrap()
    current = store.signing_key(utcnow()).kid
    async with database.db_session() as db:
        with pytest.raises(KeyOperationError):
            await keys.retire(db, current, TIMINGS)
        with pytest.raises(KeyOperationError):
            await keys.retire(db, "no-such-kid", TIMINGS)
        upcoming = await keys.rotate(db, ENCRYPTION, TIMINGS)
        retired = await keys.retire(db, upcoming.kid, TIMINGS)
        assert retired.state == "retired"
        await db.commit()
    await store.reload()
    # It never signed anything, so it leaves the key set at once.
    assert _kids(store) == [current]
    await asyncio.sleep(1.1)
    await store.reload()
    assert store.signing_key(utcnow()).kid == current


async def test_revoking_the_signing_key_replaces_it_and_unpublishes_it_at_once(
    database: Database,
) -> None:
    store = _store(database)
    await store.bootstrap()
    compromised = store.signing_key(utcnow()).kid
    async with database.db_session() as db:
        revocation = await keys.revoke(db, ENCRYPTION, compromised, utcnow())
        await db.commit()
    assert revocation.replacement is not None
    await store.reload()
    # Nothing waits for a publish delay: the replacement signs now, the revoked key is gone.
    assert store.signing_key(utcnow()).kid == revocation.replacement.kid
    assert _kids(store) == [revocation.replacement.kid]
    assert store.public_key(compromised) is None
    async with database.db_session() as db:
        with pytest.raises(KeyOperationError, match="already revoked"):
            await keys.revoke(db, ENCRYPTION, compromised, utcnow())


async def test_revoking_prefers_a_published_next_key_and_leaves_other_keys_alone(
    database: Database,
) -> None:
    store = _store(database)
    await store.bootstrap()
    compromised = store.signing_key(utcnow()).kid
    async with database.db_session() as db:
        upcoming = (await keys.rotate(db, ENCRYPTION, TIMINGS)).kid
        await db.commit()
        revocation = await keys.revoke(db, ENCRYPTION, compromised, utcnow())
        await db.commit()
    assert revocation.replacement is not None
    # Already in every verifier's cached key set: better than a key nobody has seen.
    assert revocation.replacement.kid == upcoming
    await store.reload()
    assert store.signing_key(utcnow()).kid == upcoming
    assert _kids(store) == [upcoming]
    # Revoking a key that is not signing puts nobody new in charge.
    async with database.db_session() as db:
        spare = (await keys.rotate(db, ENCRYPTION, TIMINGS)).kid
        await db.commit()
        assert (await keys.revoke(db, ENCRYPTION, spare, utcnow())).replacement is None
        await db.commit()
    await store.reload()
    assert store.signing_key(utcnow()).kid == upcoming
    assert _kids(store) == [upcoming]
