"""Signing keys: generation, encryption at rest, rotation, retirement and the key set (JWKS).

A key's life: `next` (published, not signing) -> `active` (signing) -> `retired` (published
until every token it signed has expired) -> unpublished. A compromised key is `revoked`:
unpublished and never used again at once, with another key put in charge.

Which key signs is decided by time alone: the newest key whose `activates_at` has passed.
Every replica therefore switches at the same moment without talking to the others, and
because a `next` key is published for longer than the key set may be cached, every
verifier knows it before it signs anything.
"""

import asyncio
import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.clock import utcnow
from auth_service.models import SigningKey

ALGORITHM = "RS256"
# States of a key that may sign (now or later); `retired` and `revoked` never sign again.
LIVE_STATES = ("next", "active")
KEY_BITS = 2048
_NONCE_BYTES = 12
_KEK_INFO = b"auth-service signing-key encryption v1"

log = structlog.stdlib.get_logger(__name__)


class KeyOperationError(Exception):
    """A key operation the caller asked for is not possible; the message says why."""


@dataclass(frozen=True)
class KeyTimings:
    """The durations that decide when keys start signing and stop being published."""

    publish_delay: timedelta
    # How long a retired key stays published: the longest a token it signed can live,
    # plus the time a replica may keep signing with it before it reloads the keys.
    retention: timedelta


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
        plaintext = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, kid: str, blob: bytes) -> rsa.RSAPrivateKey:
        plaintext = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], kid.encode())
        key = serialization.load_der_private_key(plaintext, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("a signing key is not an RSA key")
        return key


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public half as an RFC 7517 JWK; its kid is the RFC 7638 thumbprint."""
    jwk: dict[str, str] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest())
    kid = thumbprint.rstrip(b"=").decode()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": ALGORITHM, "n": jwk["n"], "e": jwk["e"]}


def _public_key_from_jwk(jwk: dict[str, str]) -> rsa.RSAPublicKey:
    key = RSAAlgorithm.from_jwk(jwk)
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("a published key is not an RSA public key")
    return key


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def effective_state(key: SigningKey, now: datetime) -> str:
    """`next` keys become `active` by time alone; the stored state catches up lazily."""
    if key.state == "next" and key.activates_at <= now:
        return "active"
    return key.state


def is_published(key: SigningKey, now: datetime) -> bool:
    return key.published_until is None or key.published_until > now


async def _last_sequence(session: AsyncSession) -> int:
    return (await session.scalar(select(func.max(SigningKey.sequence)))) or 0


async def add_key(
    session: AsyncSession,
    encryption: KeyEncryption,
    *,
    sequence: int,
    publish_delay: timedelta,
) -> SigningKey:
    """Insert a new key (`active` at once without a delay, else `next`); flushed, not
    committed.

    The delay counts from the insert, after the (slow) key generation.

    `sequence` is the last one seen when the caller decided to add a key, plus one: when
    another writer added a key since, the unique sequence makes this insert fail
    (`IntegrityError`, at the flush or the caller's commit), and the caller decides
    whether losing that race matters.
    """
    private_key = await asyncio.to_thread(generate_private_key)
    jwk = public_jwk(private_key)
    now = utcnow()
    activates_at = now + publish_delay
    key = SigningKey(
        kid=jwk["kid"],
        sequence=sequence,
        state="active" if activates_at <= now else "next",
        public_jwk=jwk,
        private_key_encrypted=encryption.encrypt(jwk["kid"], private_key),
        created_at=now,
        activates_at=activates_at,
    )
    session.add(key)
    await session.flush()
    return key


async def ensure_signing_key(session: AsyncSession, encryption: KeyEncryption) -> None:
    """Create an immediately active key when none can sign; safe when replicas race."""
    last = await _last_sequence(session)
    signing = await session.scalar(
        select(func.count())
        .select_from(SigningKey)
        .where(SigningKey.state.in_(LIVE_STATES), SigningKey.activates_at <= utcnow())
    )
    await session.commit()
    if signing:
        return
    try:
        key = await add_key(session, encryption, sequence=last + 1, publish_delay=timedelta(0))
        await session.commit()
    except IntegrityError:
        # Another replica created it first; its key is the one everybody uses.
        await session.rollback()
        log.info("signing_key_created_elsewhere")
        return
    log.info("signing_key_created", kid=key.kid)


async def rotate(
    session: AsyncSession, encryption: KeyEncryption, timings: KeyTimings
) -> SigningKey:
    """Add a `next` key that signs once it has been published for `publish_delay`
    (flushed; the caller commits)."""
    last = await _last_sequence(session)
    try:
        key = await add_key(
            session, encryption, sequence=last + 1, publish_delay=timings.publish_delay
        )
    except IntegrityError as exc:
        await session.rollback()
        raise KeyOperationError("another key was added at the same moment; try again") from exc
    log.info("signing_key_rotated", kid=key.kid, activates_at=key.activates_at.isoformat())
    return key


async def settle(session: AsyncSession, timings: KeyTimings) -> None:
    """Write down what time has decided: due `next` keys are `active`, older ones `retired`.

    Idempotent, so every replica may run it; the updates only ever move keys forward.
    """
    now = utcnow()
    keys = list(
        await session.scalars(
            select(SigningKey)
            .where(SigningKey.state.in_(LIVE_STATES), SigningKey.activates_at <= now)
            .order_by(SigningKey.activates_at.desc(), SigningKey.sequence.desc())
        )
    )
    if not keys:
        await session.commit()
        return
    newest, older = keys[0], keys[1:]
    if newest.state == "next":
        await session.execute(
            update(SigningKey)
            .where(SigningKey.kid == newest.kid, SigningKey.state == "next")
            .values(state="active")
        )
    for key in older:
        # It stopped signing when the newer key activated.
        retired_at = newest.activates_at
        await session.execute(
            update(SigningKey)
            .where(SigningKey.kid == key.kid, SigningKey.state.in_(LIVE_STATES))
            .values(
                state="retired",
                retired_at=retired_at,
                published_until=retired_at + timings.retention,
            )
        )
        log.info("signing_key_retired", kid=key.kid)
    await session.commit()


async def _signing_now(session: AsyncSession, now: datetime) -> SigningKey | None:
    """The key every replica signs with at `now`: the newest live one already activated."""
    return await session.scalar(
        select(SigningKey)
        .where(SigningKey.state.in_(LIVE_STATES), SigningKey.activates_at <= now)
        .order_by(SigningKey.activates_at.desc(), SigningKey.sequence.desc())
        .limit(1)
    )


async def _live_key(session: AsyncSession, kid: str) -> SigningKey:
    key = await session.get(SigningKey, kid)
    if key is None:
        raise KeyOperationError(f"no key with kid {kid!r}")
    if key.state not in LIVE_STATES:
        raise KeyOperationError(f"key {kid} is already {key.state}")
    return key


async def retire(session: AsyncSession, kid: str, timings: KeyTimings) -> SigningKey:
    """Retire a key by hand (not committed). The key signing now cannot be retired until
    another replaces it."""
    now = utcnow()
    key = await _live_key(session, kid)
    state = effective_state(key, now)
    if state == "active":
        current = await _signing_now(session, now)
        if current is not None and current.kid == key.kid:
            raise KeyOperationError(
                f"key {kid} is the one signing now: run `keys rotate` and retire it once "
                "the new key is active (that happens by itself), or `keys revoke` it"
            )
    # A `next` key never signed anything: it can leave the key set at once.
    published_until = now + timings.retention if state == "active" else now
    key.state = "retired"
    key.retired_at = now
    key.published_until = published_until
    log.info("signing_key_retired", kid=kid)
    return key


@dataclass(frozen=True)
class Revocation:
    revoked: SigningKey
    # The key put in charge, when the revoked one was signing.
    replacement: SigningKey | None


async def revoke(
    session: AsyncSession, encryption: KeyEncryption, kid: str, now: datetime
) -> Revocation:
    """Pull a compromised key at once (not committed): it leaves the key set and never
    signs again. When it was the signing key, another signs from now on: the earliest
    `next` key (already published, so verifiers may know it), else a new one.

    Every replica follows within KEY_REFRESH_SECONDS of the commit.
    """
    key = await _live_key(session, kid)
    signing = await _signing_now(session, now)
    key.state = "revoked"
    key.retired_at = key.retired_at or now
    key.published_until = now
    replacement = None
    if signing is not None and signing.kid == key.kid:
        replacement = await session.scalar(
            select(SigningKey)
            .where(SigningKey.state == "next", SigningKey.kid != kid)
            .order_by(SigningKey.activates_at, SigningKey.sequence)
            .limit(1)
        )
        if replacement is not None:
            replacement.state = "active"
            replacement.activates_at = now
        else:
            replacement = await add_key(
                session,
                encryption,
                sequence=await _last_sequence(session) + 1,
                publish_delay=timedelta(0),
            )
    log.warning(
        "signing_key_revoked", kid=kid, replacement=replacement.kid if replacement else None
    )
    return Revocation(key, replacement)


@dataclass(frozen=True)
class LoadedKey:
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
        sessions: async_sessionmaker[AsyncSession],
        encryption: KeyEncryption,
        timings: KeyTimings,
        jwks_max_age: int,
    ) -> None:
        self._sessions = sessions
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
        """Make sure a key exists, then load the keys."""
        async with self._sessions() as session:
            await ensure_signing_key(session, self._encryption)
        await self.reload()

    async def reload(self) -> None:
        """Settle due state changes and load every published key."""
        now = utcnow()
        async with self._sessions() as session:
            await settle(session, self._timings)
            keys = list(await session.scalars(select(SigningKey).order_by(SigningKey.sequence)))
            await session.commit()
        published = [key for key in keys if is_published(key, now)]
        signers = []
        for key in keys:
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
        self._published = {key.kid: _public_key_from_jwk(key.public_jwk) for key in published}
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
