"""Each process's caches of the database: their bounds, and how a committed change empties them."""

import uuid

import pytest
from sqlalchemy import text

from auth_service.replica_cache import ReplicaCache, announce, attach
from service_kit.db import Database


def _cache(max_age: float = 5, *, now: list[float], entries: int = 10) -> ReplicaCache[str, int]:
    return ReplicaCache(max_age, max_entries=entries, parse_key=str, clock=lambda: now[0])


def test_an_entry_is_kept_for_the_max_age_and_no_longer() -> None:
    now = [100.0]
    cache = _cache(now=now)
    cache.put("a", 1, cache.generation)
    now[0] = 104.9
    assert cache.get("a") == 1
    now[0] = 105.0
    assert cache.get("a") is None


def test_an_entry_is_kept_no_longer_than_its_value_holds() -> None:
    now = [0.0]
    cache = _cache(now=now)
    cache.put("until-1s", 1, cache.generation, within=1)
    cache.put("ended", 2, cache.generation, within=0)
    cache.put("beyond", 3, cache.generation, within=60)  # the max age still bounds it
    assert cache.get("ended") is None
    now[0] = 1.0
    assert cache.get("until-1s") is None
    assert cache.get("beyond") == 3
    now[0] = 5.0
    assert cache.get("beyond") is None


def test_a_read_that_began_before_an_invalidation_is_not_kept() -> None:
    now = [0.0]
    cache = _cache(now=now)
    before = cache.generation
    cache.forget("a")  # a change committed while the read was under way
    cache.put("a", 1, before)
    assert cache.get("a") is None
    cache.put("a", 1, cache.generation)
    assert cache.get("a") == 1


def test_forgetting_a_key_a_payload_or_everything() -> None:
    now = [0.0]
    cache = _cache(now=now)
    for key in "abcd":
        cache.put(key, 1, cache.generation)
    cache.forget("a")
    cache.forget_payload("b,c")
    assert [cache.get(key) for key in "abcd"] == [None, None, None, 1]
    uuids: ReplicaCache[uuid.UUID, int] = ReplicaCache(5, max_entries=10, parse_key=uuid.UUID)
    kept = uuid.uuid4()
    uuids.put(kept, 1, uuids.generation)
    uuids.forget_payload("not-a-uuid")  # a payload it cannot read empties it
    assert uuids.get(kept) is None
    cache.clear()
    assert cache.get("d") is None


def test_nothing_is_trusted_while_the_cache_is_not_active() -> None:
    listening = [True]
    cache: ReplicaCache[str, int] = ReplicaCache(
        5, max_entries=10, parse_key=str, active=lambda: listening[0]
    )
    cache.put("a", 1, cache.generation)
    listening[0] = False
    assert cache.get("a") is None
    cache.put("b", 1, cache.generation)
    listening[0] = True
    assert cache.get("b") is None


def test_the_oldest_entries_go_past_the_size_and_nothing_is_kept_at_zero() -> None:
    now = [0.0]
    cache = _cache(now=now, entries=2)
    for key in "abc":
        cache.put(key, 1, cache.generation)
    assert (len(cache), cache.get("a"), cache.get("c")) == (2, None, 1)
    for unkept in (_cache(0, now=now), _cache(5, now=now, entries=0)):
        unkept.put("a", 1, unkept.generation)
        assert unkept.get("a") is None


@pytest.mark.anyio
async def test_a_committed_announcement_empties_this_process_cache(database_url: str) -> None:
    database = Database(database_url)
    cache: ReplicaCache[str, int] = ReplicaCache(60, max_entries=10, parse_key=str)
    attach(database, {"test_channel": cache})
    try:
        for key in ("kept", "rolled-back", "committed"):
            cache.put(key, 1, cache.generation)
        async with database.db_session() as db:
            await announce(db, "test_channel", ["rolled-back"])
            assert cache.get("rolled-back") == 1  # not before the commit: it may not happen
            await db.rollback()
        assert cache.get("rolled-back") == 1
        async with database.db_session() as db:
            await announce(db, "test_channel", ["committed"])
            await announce(db, "another_channel", ["kept"])  # no cache of this process's
            await db.execute(text("SELECT 1"))
            assert cache.get("committed") == 1
            await db.commit()
        assert (cache.get("committed"), cache.get("kept")) == (None, 1)
    finally:
        await database.dispose()


@pytest.mark.anyio
async def test_an_announcement_in_a_process_without_caches_only_notifies(
    database_url: str,
) -> None:
    database = Database(database_url)  # the operator's CLI
    try:
        async with database.db_session() as db:
            await announce(db, "test_channel", [str(uuid.uuid4()) for _ in range(400)])
            await db.commit()
    finally:
        await database.dispose()
