"""Profile rules without HTTP, on every database backend."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from service_kit.db import Database
from users_service import profiles
from users_service.models import Profile

pytestmark = pytest.mark.anyio


async def count_profiles(database: Database) -> int:
    async with database.db_session() as db:
        return int(await db.scalar(select(func.count()).select_from(Profile)) or 0)


async def test_the_first_update_creates_an_empty_profile(database: Database) -> None:
    account = uuid.uuid4()
    async with database.db_session() as db:
        profile = await profiles.update_profile(db, account, {})
    assert profile.id == account
    assert (profile.display_name, profile.bio, profile.avatar_url) == (None, None, None)
    assert profile.created_at.tzinfo is not None
    assert profile.created_at == profile.updated_at

    async with database.db_session() as db:
        again = await profiles.update_profile(db, account, {})
    assert again.created_at == profile.created_at
    assert await count_profiles(database) == 1


async def test_simultaneous_first_updates_create_exactly_one_profile(database: Database) -> None:
    account = uuid.uuid4()

    async def first_call() -> Profile:
        async with database.db_session() as db:
            return await profiles.update_profile(db, account, {})

    created = await asyncio.gather(*(first_call() for _ in range(8)))
    assert {profile.created_at for profile in created} == {created[0].created_at}
    assert await count_profiles(database) == 1


async def test_an_update_sets_only_the_fields_sent(database: Database) -> None:
    account = uuid.uuid4()
    async with database.db_session() as db:
        created = await profiles.update_profile(db, account, {})
        await profiles.update_profile(db, account, {"display_name": "Ada", "bio": "Hi"})
    async with database.db_session() as db:
        updated = await profiles.update_profile(db, account, {"bio": None})
    assert (updated.display_name, updated.bio, updated.avatar_url) == ("Ada", None, None)
    assert updated.updated_at > created.updated_at
    assert updated.created_at == created.created_at


async def test_an_update_that_changes_nothing_keeps_updated_at(database: Database) -> None:
    account = uuid.uuid4()
    async with database.db_session() as db:
        before = await profiles.update_profile(db, account, {"display_name": "Ada"})
        stamp = before.updated_at
    async with database.db_session() as db:
        after = await profiles.update_profile(db, account, {"display_name": "Ada"})
    assert after.updated_at == stamp


async def test_read_profile_is_none_for_an_unknown_id(database: Database) -> None:
    assert await database.run(profiles.read_profile, uuid.uuid4()) is None


async def test_read_or_create_creates_one_profile_and_then_only_reads(database: Database) -> None:
    account = uuid.uuid4()
    created = await database.run(profiles.read_or_create_profile, account)
    assert created["id"] == account
    assert (created["display_name"], created["bio"], created["avatar_url"]) == (None, None, None)
    assert created["created_at"].tzinfo is not None
    assert created["created_at"] == created["updated_at"]

    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        again = await database.run(profiles.read_or_create_profile, account)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert again == created
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT")
    assert await count_profiles(database) == 1


async def test_simultaneous_first_reads_create_exactly_one_profile(database: Database) -> None:
    account = uuid.uuid4()
    rows = await asyncio.gather(
        *(database.run(profiles.read_or_create_profile, account) for _ in range(8))
    )
    assert {row["created_at"] for row in rows} == {rows[0]["created_at"]}
    assert await count_profiles(database) == 1


async def test_a_read_sees_the_update_just_made(database: Database) -> None:
    account = uuid.uuid4()
    await database.run(profiles.read_or_create_profile, account)
    async with database.db_session() as db:
        updated = await profiles.update_profile(db, account, {"display_name": "Ada"})
    row = await database.run(profiles.read_profile, account)
    assert row is not None
    assert (row["display_name"], row["updated_at"]) == ("Ada", updated.updated_at)


async def test_pages_cover_every_profile_once_in_a_stable_order(database: Database) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    # Some share a created_at, so the id decides between them.
    stamps = [base, base, base + timedelta(seconds=1), base + timedelta(seconds=2), base]
    async with database.db_session() as db:
        db.add_all(Profile(id=uuid.uuid4(), created_at=stamp, updated_at=stamp) for stamp in stamps)
        await db.commit()
        expected = list(
            await db.scalars(select(Profile.id).order_by(Profile.created_at, Profile.id))
        )

    seen: list[uuid.UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        async with database.db_session() as db:
            page, cursor = await profiles.list_profiles(db, 2, cursor)
        seen += [profile.id for profile in page]
        pages += 1
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


async def test_an_exactly_full_last_page_has_no_next_cursor(database: Database) -> None:
    async with database.db_session() as db:
        for _ in range(2):
            await profiles.update_profile(db, uuid.uuid4(), {})
        page, cursor = await profiles.list_profiles(db, 2)
    assert len(page) == 2
    assert cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !",
        "Zm9v",  # "foo"
        profiles.encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4())[:-6],
        "MjAyNi0wMS0wMVQwMDowMDowMHwxMjM",  # a naive time and no UUID
    ],
)
def test_a_cursor_this_service_did_not_write_is_refused(cursor: str) -> None:
    with pytest.raises(profiles.InvalidCursorError):
        profiles.decode_cursor(cursor)


def test_a_cursor_round_trips() -> None:
    position = (datetime(2026, 1, 1, 12, 30, 0, 123456, tzinfo=UTC), uuid.uuid4())
    assert profiles.decode_cursor(profiles.encode_cursor(*position)) == position
