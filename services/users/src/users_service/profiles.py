"""Profiles: created on first use, updated partially, listed page by page."""

import base64
import binascii
import uuid
from datetime import datetime

from sqlalchemy import Connection, Insert, RowMapping, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service_kit.db import Database, dialect_insert
from service_kit.notifications import notify
from users_service.models import Profile, utc_now
from users_service.profile_cache import CHANNEL, ProfileCache
from users_service.schemas import FullProfile

# The hot read (`GET /users/me` on every request) is one Core SELECT of the columns: no
# identity map, no unit of work. Built once, so SQLAlchemy's statement cache key is memoised.
_profiles = Profile.__table__
_SELECT_PROFILE = select(*_profiles.columns).where(_profiles.c.id == bindparam("id"))


class InvalidCursorError(ValueError):
    """A listing cursor this service did not hand out."""


def read_profile(connection: Connection, profile_id: uuid.UUID) -> RowMapping | None:
    """The profile with this id, as its columns, if any (run it with `Database.run`)."""
    return connection.execute(_SELECT_PROFILE, {"id": profile_id}).mappings().first()


def read_or_create_profile(connection: Connection, account_id: uuid.UUID) -> RowMapping:
    """The account's profile, created empty if it has none; concurrent first calls make one.

    The common case, a profile that exists, is one SELECT and no write.
    """
    row = read_profile(connection, account_id)
    if row is not None:
        return row
    connection.execute(_create_if_missing(connection.dialect.name, account_id))
    connection.commit()
    row = read_profile(connection, account_id)
    assert row is not None
    return row


async def my_profile_answer(
    database: Database, cache: ProfileCache, account_id: uuid.UUID
) -> bytes:
    """`GET /users/me`'s body: from this replica's cache, else read (or created) and kept."""
    cached = cache.get(account_id)
    if cached is not None:
        return cached
    generation = cache.generation  # before the read: a write meanwhile makes it stale
    row = await database.run(read_or_create_profile, account_id)
    body = FullProfile.model_validate(row).model_dump_json().encode()
    cache.put(account_id, body, generation)
    return body


def _create_if_missing(dialect: str, account_id: uuid.UUID) -> Insert:
    # INSERT … ON CONFLICT DO NOTHING: whoever loses the race reads the winner's row.
    insert = dialect_insert(dialect)
    now = utc_now()
    statement = insert(Profile).values(id=account_id, created_at=now, updated_at=now)
    return statement.on_conflict_do_nothing(index_elements=[Profile.id])


async def update_profile(
    db: AsyncSession,
    account_id: uuid.UUID,
    changes: dict[str, str | None],
    cache: ProfileCache | None = None,
) -> Profile:
    """Set the given fields of the account's profile, creating it first if it has none;
    commits. `updated_at` moves only when a value does; then every replica's cached answer
    goes (`cache`, this one's, at once; the others' when the commit's notification reaches
    them)."""
    await db.execute(_create_if_missing(db.get_bind().dialect.name, account_id))
    profile = await db.get(Profile, account_id)
    assert profile is not None  # created above, or by a concurrent first call
    changed = {field: value for field, value in changes.items() if getattr(profile, field) != value}
    for field, value in changed.items():
        setattr(profile, field, value)
    if changed:
        profile.updated_at = utc_now()
        await notify(db, CHANNEL, str(account_id))
    await db.commit()
    if changed and cache is not None:
        cache.invalidate(account_id)
    return profile


async def list_profiles(
    db: AsyncSession, limit: int, cursor: str | None = None
) -> tuple[list[Profile], str | None]:
    """A page of profiles, oldest first, and the cursor to the next page (None on the last)."""
    query = select(Profile).order_by(Profile.created_at, Profile.id).limit(limit + 1)
    if cursor is not None:
        created_at, profile_id = decode_cursor(cursor)
        query = query.where(
            or_(
                Profile.created_at > created_at,
                and_(Profile.created_at == created_at, Profile.id > profile_id),
            )
        )
    profiles = list((await db.scalars(query)).all())
    if len(profiles) <= limit:
        return profiles, None
    last = profiles[limit - 1]
    return profiles[:limit], encode_cursor(last.created_at, last.id)


def encode_cursor(created_at: datetime, profile_id: uuid.UUID) -> str:
    """An opaque cursor: the position of the last profile of a page."""
    raw = f"{created_at.isoformat()}|{profile_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position `encode_cursor` wrote; `InvalidCursorError` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at_text, profile_id_text = raw.split("|")
        created_at = datetime.fromisoformat(created_at_text)
        profile_id = uuid.UUID(profile_id_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidCursorError("not a cursor from this service") from exc
    if created_at.tzinfo is None:
        raise InvalidCursorError("not a cursor from this service")
    return created_at, profile_id
