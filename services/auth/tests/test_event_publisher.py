"""The publisher: in sequence order, in batches, the cursor moved only by a 2xx, retried
with a capped backoff, one replica at a time (the lease)."""

import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from auth_service import events
from auth_service.clock import utcnow
from auth_service.event_publisher import (
    EventPublisher,
    PublisherPolicy,
    Subscriber,
    hold_lease,
    parse_subscribers,
    release_lease,
)
from auth_service.events import EventType
from auth_service.models import EventCursor
from service_kit.db import Database
from testsupport.tokens import FakeClock

pytestmark = pytest.mark.anyio

USERS = Subscriber("users", "http://users.test/users/events")
AUDIT = Subscriber("audit", "http://audit.test/events")


class Subscribers:
    """Each subscriber's answers (a status per call, then 204) and what it received."""

    def __init__(self, **statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: dict[str, list[list[dict[str, Any]]]] = {}
        self.tokens: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.split(".")[0]
        self.tokens.append(request.headers["authorization"])
        self.received.setdefault(name, []).append(json.loads(request.content)["events"])
        queue = self.statuses.get(name, [])
        return httpx.Response(queue.pop(0) if queue else 204)

    def sequences(self, name: str) -> list[list[int]]:
        return [[event["sequence"] for event in batch] for batch in self.received.get(name, [])]


async def _publish(database: Database, count: int, account_id: uuid.UUID | None = None) -> None:
    async with database.db_session() as db:
        for _ in range(count):
            await events.publish(
                db, EventType.ACCOUNT_CREATED, account_id=account_id or uuid.uuid4(), now=utcnow()
            )
        await db.commit()


async def _cursor(database: Database, name: str) -> int | None:
    async with database.db_session() as db:
        return await db.scalar(
            select(EventCursor.last_sequence).where(EventCursor.subscriber == name)
        )


def _publisher(
    database: Database,
    subscribers: Subscribers,
    clock: FakeClock | None = None,
    **policy: Any,
) -> tuple[EventPublisher, httpx.AsyncClient]:
    publisher = EventPublisher(
        database,
        [USERS, AUDIT],
        lambda: "publisher-token",
        PublisherPolicy(**{"batch_size": 2, **policy}),
        clock=clock or FakeClock(),
    )
    return publisher, httpx.AsyncClient(transport=httpx.MockTransport(subscribers.handler))


async def test_events_go_to_every_subscriber_in_order_in_batches(database: Database) -> None:
    await _publish(database, 5)
    subscribers = Subscribers()
    publisher, http = _publisher(database, subscribers)
    async with http:
        assert await publisher.round(http) == 4  # a batch of 2 to each
        while await publisher.round(http):
            pass
    assert subscribers.sequences("users") == [[1, 2], [3, 4], [5]]
    assert subscribers.sequences("audit") == [[1, 2], [3, 4], [5]]
    assert set(subscribers.tokens) == {"Bearer publisher-token"}
    assert await _cursor(database, "users") == 5
    first = subscribers.received["users"][0][0]
    assert set(first) == {
        "id", "sequence", "type", "account_id", "session_id", "occurred_at", "data"
    }  # fmt: skip
    assert first["type"] == "account.created"


async def test_a_failing_subscriber_gets_the_same_batch_again_after_a_capped_backoff(
    database: Database,
) -> None:
    await _publish(database, 3)
    clock = FakeClock()
    subscribers = Subscribers(users=[503, 500, 401, 503])
    publisher, http = _publisher(
        database, subscribers, clock, retry_base_seconds=1, retry_max_seconds=3
    )
    async with http:
        delays = []
        for _ in range(4):
            before = len(subscribers.received.get("users", []))
            await publisher.round(http)
            assert len(subscribers.received["users"]) == before + 1
            # Not due again before its delay: the round skips it.
            await publisher.round(http)
            assert len(subscribers.received["users"]) == before + 1
            delay = publisher.next_attempt("users") - clock()
            delays.append(delay)
            clock.advance(delay)
        assert delays == [1, 2, 3, 3]  # doubling, capped
        assert await _cursor(database, "users") is None  # never moved on a failure
        while await publisher.round(http):
            pass
    # The failing batch again and again, then onwards; the other subscriber never waited.
    assert subscribers.sequences("users") == [[1, 2]] * 5 + [[3]]
    assert subscribers.sequences("audit") == [[1, 2], [3]]
    assert await _cursor(database, "users") == 3


async def test_an_unreachable_subscriber_is_retried_too(database: Database) -> None:
    await _publish(database, 1)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    publisher = EventPublisher(database, [USERS], lambda: "t", clock=FakeClock())
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        assert await publisher.round(http) == 0
    assert publisher.next_attempt("users") > publisher.clock()
    assert await _cursor(database, "users") is None


async def test_one_replica_publishes_at_a_time(database: Database) -> None:
    await _publish(database, 1)
    subscribers = Subscribers()
    first, http = _publisher(database, subscribers)
    second, _ = _publisher(database, subscribers)
    async with http:
        assert await first.round(http) == 2
        await _publish(database, 1)
        assert await second.round(http) == 0  # the first holds the lease
        assert await first.round(http) == 2
        await release_lease(database, first.holder, utcnow())  # a clean shutdown
        await _publish(database, 1)
        assert await second.round(http) == 2
    assert subscribers.sequences("users") == [[1], [2], [3]]


async def test_an_expired_lease_is_taken_over(database: Database) -> None:
    lease = timedelta(seconds=10)
    now = utcnow()
    assert await hold_lease(database, "a", now, lease)
    assert not await hold_lease(database, "b", now + timedelta(seconds=9), lease)
    assert await hold_lease(database, "a", now + timedelta(seconds=9), lease)  # renewed
    assert not await hold_lease(database, "b", now + timedelta(seconds=18), lease)
    assert await hold_lease(database, "b", now + timedelta(seconds=19), lease)  # "a" died
    assert not await hold_lease(database, "a", now + timedelta(seconds=20), lease)


def test_the_subscribers_setting_names_each_url() -> None:
    assert parse_subscribers("") == []
    assert parse_subscribers("users=http://127.0.0.1:8002/users/events, b=https://b/e") == [
        Subscriber("users", "http://127.0.0.1:8002/users/events"),
        Subscriber("b", "https://b/e"),
    ]
    for bad in ("users", "users=", "=http://x", "users=ftp://x", "a=http://x,a=http://y"):
        with pytest.raises(ValueError, match=r"pair|twice"):
            parse_subscribers(bad)
