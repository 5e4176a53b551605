"""Signing keys' lifecycle in the database: rotation, retirement, revocation.

A key's life: `next` (published, not signing) -> `active` (signing) -> `retired` (published
until every token it signed has expired) -> unpublished. A compromised key is `revoked`:
unpublished and never used again at once, with another key put in charge.

Which key signs is decided by time alone: the newest key whose `activates_at` has passed.
Every replica therefore switches at the same moment without talking to the others, and
because a `next` key is published for longer than the key set may be cached, every
verifier knows it before it signs anything.

These functions write in the caller's transaction and never commit: the operations that
call them (`administration`, the `SigningKeyStore`) do. Keys are encrypted at rest by
`key_encryption`, published as JWKs by `jwk`, and held in memory by `key_store`.
"""

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.clock import utcnow
from auth_service.jwk import generate_private_key, public_jwk
from auth_service.key_encryption import KeyEncryption
from auth_service.models import SigningKey

# States of a key that may sign (now or later); `retired` and `revoked` never sign again.
LIVE_STATES = ("next", "active")

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


def effective_state(key: SigningKey, now: datetime) -> str:
    """`next` keys become `active` by time alone; the stored state catches up lazily."""
    if key.state == "next" and key.activates_at <= now:
        return "active"
    return key.state


def is_published(key: SigningKey, now: datetime) -> bool:
    """Whether the key is in the key set at `now`."""
    return key.published_until is None or key.published_until > now


async def last_sequence(db: AsyncSession) -> int:
    """The highest sequence any key has (0 when there is none)."""
    return (await db.scalar(select(func.max(SigningKey.sequence)))) or 0


async def add_key(
    db: AsyncSession,
    encryption: KeyEncryption,
    *,
    sequence: int,
    publish_delay: timedelta,
) -> SigningKey:
    """Insert a new key (`active` at once without a delay, else `next`), flushed.

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
    db.add(key)
    await db.flush()
    return key


async def can_sign(db: AsyncSession, now: datetime) -> bool:
    """Whether a live key has activated by `now`, so that something signs."""
    signing = await db.scalar(
        select(func.count())
        .select_from(SigningKey)
        .where(SigningKey.state.in_(LIVE_STATES), SigningKey.activates_at <= now)
    )
    return bool(signing)


async def rotate(db: AsyncSession, encryption: KeyEncryption, timings: KeyTimings) -> SigningKey:
    """Add a `next` key that signs once it has been published for `publish_delay`."""
    last = await last_sequence(db)
    try:
        key = await add_key(db, encryption, sequence=last + 1, publish_delay=timings.publish_delay)
    except IntegrityError as exc:
        raise KeyOperationError("another key was added at the same moment; try again") from exc
    log.info("signing_key_rotated", kid=key.kid, activates_at=key.activates_at.isoformat())
    return key


async def settle(db: AsyncSession, timings: KeyTimings) -> None:
    """Write down what time has decided: due `next` keys are `active`, older ones `retired`.

    Idempotent, so every replica may run it; the updates only ever move keys forward.
    """
    now = utcnow()
    keys = list(
        await db.scalars(
            select(SigningKey)
            .where(SigningKey.state.in_(LIVE_STATES), SigningKey.activates_at <= now)
            .order_by(SigningKey.activates_at.desc(), SigningKey.sequence.desc())
        )
    )
    if not keys:
        return
    newest, older = keys[0], keys[1:]
    if newest.state == "next":
        await db.execute(
            update(SigningKey)
            .where(SigningKey.kid == newest.kid, SigningKey.state == "next")
            .values(state="active")
        )
    for key in older:
        # It stopped signing when the newer key activated.
        retired_at = newest.activates_at
        await db.execute(
            update(SigningKey)
            .where(SigningKey.kid == key.kid, SigningKey.state.in_(LIVE_STATES))
            .values(
                state="retired",
                retired_at=retired_at,
                published_until=retired_at + timings.retention,
            )
        )
        log.info("signing_key_retired", kid=key.kid)


async def _signing_now(db: AsyncSession, now: datetime) -> SigningKey | None:
    """The key every replica signs with at `now`: the newest live one already activated."""
    return await db.scalar(
        select(SigningKey)
        .where(SigningKey.state.in_(LIVE_STATES), SigningKey.activates_at <= now)
        .order_by(SigningKey.activates_at.desc(), SigningKey.sequence.desc())
        .limit(1)
    )


async def _live_key(db: AsyncSession, kid: str) -> SigningKey:
    key = await db.get(SigningKey, kid)
    if key is None:
        raise KeyOperationError(f"no key with kid {kid!r}")
    if key.state not in LIVE_STATES:
        raise KeyOperationError(f"key {kid} is already {key.state}")
    return key


async def retire(db: AsyncSession, kid: str, timings: KeyTimings) -> SigningKey:
    """Retire a key by hand. The key signing now cannot be retired until another replaces
    it."""
    now = utcnow()
    key = await _live_key(db, kid)
    state = effective_state(key, now)
    if state == "active":
        current = await _signing_now(db, now)
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
    db: AsyncSession, encryption: KeyEncryption, kid: str, now: datetime
) -> Revocation:
    """Pull a compromised key at once: it leaves the key set and never
    signs again. When it was the signing key, another signs from now on: the earliest
    `next` key (already published, so verifiers may know it), else a new one.

    Every replica follows within KEY_REFRESH_SECONDS of the commit.
    """
    key = await _live_key(db, kid)
    signing = await _signing_now(db, now)
    key.state = "revoked"
    key.retired_at = key.retired_at or now
    key.published_until = now
    replacement = None
    if signing is not None and signing.kid == key.kid:
        replacement = await db.scalar(
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
                db,
                encryption,
                sequence=await last_sequence(db) + 1,
                publish_delay=timedelta(0),
            )
    log.warning(
        "signing_key_revoked", kid=kid, replacement=replacement.kid if replacement else None
    )
    return Revocation(key, replacement)
