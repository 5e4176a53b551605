"""Signing keys: first key without races, encryption at rest, rotation and retirement."""

import asyncio
from datetime import timedelta

import jwt
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select

from auth_service import keys
from auth_service.clock import utcnow
from auth_service.db import Database
from auth_service.keys import KeyEncryption, KeyOperationError, KeyTimings, SigningKeyStore
from auth_service.models import SigningKey

pytestmark = pytest.mark.anyio

ENCRYPTION = KeyEncryption("test-kek")
TIMINGS = KeyTimings(publish_delay=timedelta(seconds=1), retention=timedelta(minutes=16))


def _store(database: Database) -> SigningKeyStore:
    return SigningKeyStore(database.sessions, ENCRYPTION, TIMINGS, 300)


def _kids(store: SigningKeyStore) -> list[str]:
    # Parsed by a stock client, as a verifier would.
    return [str(key.key_id) for key in jwt.PyJWKSet.from_json(store.jwks_body.decode()).keys]


async def test_replicas_starting_together_create_exactly_one_key(database: Database) -> None:
    replicas = [_store(database) for _ in range(4)]
    await asyncio.gather(*(replica.bootstrap() for replica in replicas))
    async with database.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(SigningKey)) == 1
    assert len({replica.jwks_etag for replica in replicas}) == 1
    now = utcnow()
    assert len({replica.signing_key(now).kid for replica in replicas}) == 1


async def test_private_keys_are_encrypted_and_bound_to_their_kid(database: Database) -> None:
    store = _store(database)
    await store.bootstrap()
    async with database.sessions() as session:
        row = (await session.scalars(select(SigningKey))).one()
    assert b"PRIVATE" not in row.private_key_encrypted
    assert ENCRYPTION.decrypt(row.kid, row.private_key_encrypted).key_size == 2048
    with pytest.raises(InvalidTag):
        KeyEncryption("another-kek").decrypt(row.kid, row.private_key_encrypted)
    with pytest.raises(InvalidTag):
        ENCRYPTION.decrypt("another-kid", row.private_key_encrypted)


async def test_the_kid_is_the_rfc_7638_thumbprint() -> None:
    # RFC 7638 §3.1's example key and thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvz"
        "qY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu"
        "0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    from cryptography.hazmat.primitives.asymmetric import rsa

    public = rsa.RSAPublicNumbers(65537, int.from_bytes(jwt.utils.base64url_decode(n), "big"))

    class _Key:
        def public_key(self) -> rsa.RSAPublicKey:
            return public.public_key()

    jwk = keys.public_jwk(_Key())  # type: ignore[arg-type]
    assert jwk["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


async def test_rotation_publishes_first_signs_later_and_keeps_the_old_key(
    database: Database,
) -> None:
    store = _store(database)
    await store.bootstrap()
    old = store.signing_key(utcnow()).kid
    async with database.sessions() as session:
        new = (await keys.rotate(session, ENCRYPTION, TIMINGS)).kid
        await session.commit()
    await store.reload()
    assert _kids(store) == [old, new]
    assert store.signing_key(utcnow()).kid == old  # published, not signing yet

    await asyncio.sleep(1.1)
    await store.reload()
    assert store.signing_key(utcnow()).kid == new
    assert _kids(store) == [old, new]  # the old key verifies what it signed
    async with database.sessions() as session:
        retired = await session.get(SigningKey, old)
        assert retired is not None
        assert retired.state == "retired"
        assert retired.retired_at is not None
        assert retired.published_until == retired.retired_at + TIMINGS.retention


async def test_the_signing_key_cannot_be_retired_a_next_key_can(database: Database) -> None:
    store = _store(database)
    await store.bootstrap()
    current = store.signing_key(utcnow()).kid
    async with database.sessions() as session:
        with pytest.raises(KeyOperationError):
            await keys.retire(session, current, TIMINGS)
        with pytest.raises(KeyOperationError):
            await keys.retire(session, "no-such-kid", TIMINGS)
        upcoming = await keys.rotate(session, ENCRYPTION, TIMINGS)
        retired = await keys.retire(session, upcoming.kid, TIMINGS)
        assert retired.state == "retired"
        await session.commit()
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
    async with database.sessions() as session:
        revocation = await keys.revoke(session, ENCRYPTION, compromised, utcnow())
        await session.commit()
    assert revocation.replacement is not None
    await store.reload()
    # Nothing waits for a publish delay: the replacement signs now, the revoked key is gone.
    assert store.signing_key(utcnow()).kid == revocation.replacement.kid
    assert _kids(store) == [revocation.replacement.kid]
    assert store.public_key(compromised) is None
    async with database.sessions() as session:
        with pytest.raises(KeyOperationError, match="already revoked"):
            await keys.revoke(session, ENCRYPTION, compromised, utcnow())


async def test_revoking_prefers_a_published_next_key_and_leaves_other_keys_alone(
    database: Database,
) -> None:
    store = _store(database)
    await store.bootstrap()
    compromised = store.signing_key(utcnow()).kid
    async with database.sessions() as session:
        upcoming = (await keys.rotate(session, ENCRYPTION, TIMINGS)).kid
        await session.commit()
        revocation = await keys.revoke(session, ENCRYPTION, compromised, utcnow())
        await session.commit()
    assert revocation.replacement is not None
    # Already in every verifier's cached key set: better than a key nobody has seen.
    assert revocation.replacement.kid == upcoming
    await store.reload()
    assert store.signing_key(utcnow()).kid == upcoming
    assert _kids(store) == [upcoming]
    # Revoking a key that is not signing puts nobody new in charge.
    async with database.sessions() as session:
        spare = (await keys.rotate(session, ENCRYPTION, TIMINGS)).kid
        await session.commit()
        assert (await keys.revoke(session, ENCRYPTION, spare, utcnow())).replacement is None
        await session.commit()
    await store.reload()
    assert store.signing_key(utcnow()).kid == upcoming
    assert _kids(store) == [upcoming]
