"""Every replica's signing keys in memory: the key that signs, and the key set it serves.

The store is the unit of work of its own loop: it reads and settles the keys in the
database (`keys`), commits, and keeps the decrypted keys and the JWKS body in memory, so
that signing and serving the key set never touch the database.
"""

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from auth_service import keys
from auth_service.clock import utcnow
from auth_service.jwk import public_key_from_jwk
from auth_service.key_encryption import KeyEncryption
from auth_service.keys import LIVE_STATES, KeyTimings, is_published
from auth_service.models import SigningKey
from service_kit.db import Database

log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class LoadedKey:
    """A key that signs (now or later), decrypted."""

    kid: str
    private_key: rsa.RSAPrivateKey
    activates_at: datetime
    sequence: int


class SigningKeyStore:
    """Every replica's in-memory copy of the keys: what signs, and the key set it serves.

    Reloaded from the database every `refresh` seconds, so a rotation done anywhere (the
    CLI, another replica) reaches every replica without a restart.
    """

    def __init__(
        self,
        database: Database,
        encryption: KeyEncryption,
        timings: KeyTimings,
        jwks_max_age: int,
    ) -> None:
        self._database = database
        self._encryption = encryption
        self._timings = timings
        self._jwks_max_age = jwks_max_age
        self._signers: list[LoadedKey] = []
        self._decrypted: dict[str, rsa.RSAPrivateKey] = {}
        self._published: dict[str, rsa.RSAPublicKey] = {}
        self.jwks_body = b'{"keys":[]}'
        self.jwks_etag = ""
        self.jwks_headers: dict[str, str] = {}
        self.loaded = False

    async def bootstrap(self) -> None:
        """Make sure a key can sign (replicas that race create one between them), then
        load the keys."""
        async with self._database.db_session() as db:
            signing = await keys.can_sign(db, utcnow())
            last = await keys.last_sequence(db)
        if not signing:
            await self._create_first_key(last + 1)
        await self.reload()

    async def _create_first_key(self, sequence: int) -> None:
        # A new session: no connection is held while the key is generated (it is slow).
        async with self._database.db_session() as db:
            try:
                key = await keys.add_key(
                    db, self._encryption, sequence=sequence, publish_delay=timedelta(0)
                )
                await db.commit()
            except IntegrityError:
                # Another replica created it first; its key is the one everybody uses.
                log.info("signing_key_created_elsewhere")
                return
        log.info("signing_key_created", kid=key.kid)

    async def reload(self) -> None:
        """Settle due state changes and load every published key."""
        now = utcnow()
        async with self._database.db_session() as db:
            await keys.settle(db, self._timings)
            stored = list(await db.scalars(select(SigningKey).order_by(SigningKey.sequence)))
            await db.commit()
        published = [key for key in stored if is_published(key, now)]
        signers = []
        for key in stored:
            if key.state not in LIVE_STATES:
                continue
            private_key = self._decrypted.get(key.kid)
            if private_key is None:
                private_key = self._encryption.decrypt(key.kid, key.private_key_encrypted)
                self._decrypted[key.kid] = private_key
            signers.append(LoadedKey(key.kid, private_key, key.activates_at, key.sequence))
        body = json.dumps(
            {"keys": [key.public_jwk for key in published]}, separators=(",", ":")
        ).encode()
        self._signers = sorted(signers, key=lambda k: (k.activates_at, k.sequence))
        self._published = {key.kid: public_key_from_jwk(key.public_jwk) for key in published}
        self.jwks_body = body
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self.jwks_etag = etag
        self.jwks_headers = {"Cache-Control": self.cache_control, "ETag": etag}
        self.loaded = True

    def signing_key(self, now: datetime) -> LoadedKey:
        """The newest key whose activation time has passed."""
        for key in reversed(self._signers):
            if key.activates_at <= now:
                return key
        raise LookupError("no signing key is loaded yet")

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The public key of a published key, to check our own tokens with."""
        return self._published.get(kid)

    @property
    def cache_control(self) -> str:
        """The key set's Cache-Control (JWKS_MAX_AGE_SECONDS)."""
        return f"public, max-age={self._jwks_max_age}"

    async def keep_fresh(self, interval: float) -> None:
        """Load the keys until that works, then reload them every `interval` seconds."""
        while True:
            try:
                if self.loaded:
                    await self.reload()
                else:
                    await self.bootstrap()
            except Exception as exc:  # the database may be down; keep the last good copy
                log.warning("signing_keys_not_loaded", error=type(exc).__name__)
                await asyncio.sleep(min(interval, 1.0) if not self.loaded else interval)
                continue
            await asyncio.sleep(interval)
