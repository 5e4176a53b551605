"""The publisher: delivers the outbox's events (`events.py`) to each subscriber, in order.

One replica publishes at a time: the holder of a lease row, taken with a compare-and-set
while it is free or expired and renewed at every round (the same on SQLite and PostgreSQL).
Should the holder die, another replica (or its restart) takes over once the lease expires.

Each subscriber has a cursor, the last sequence number it acknowledged. A round reads the
events after it (up to `events.visible_until`, so none is skipped), POSTs them as one JSON
batch, `{"events": [...]}`, and moves the cursor only on a 2xx. Anything else is retried,
the same batch from the same cursor, after a delay that doubles up to a cap: an event is
never dropped, and a subscriber sees the events in sequence order, hence in order per
account. At least once: a batch whose 2xx was lost, or a lease lost mid-delivery, is sent
again, so subscribers deduplicate by event id.
"""

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from auth_service import events
from auth_service.clock import utcnow
from auth_service.key_store import SigningKeyStore
from auth_service.models import EventCursor, EventPublisherLease, OutboxEvent
from auth_service.tokens import TokenIssuer, issue_access_token
from service_kit.db import Database

LEASE_NAME = "events"
# The client the publisher's own access tokens name (`sub` and `client_id`), and their scope.
PUBLISHER_CLIENT_ID = "events-publisher"
PUBLISH_SCOPE = "events:publish"

log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str


def parse_subscribers(setting: str) -> list[Subscriber]:
    """`EVENT_SUBSCRIBERS`: comma-separated `name=url` pairs (`users=http://…/users/events`)."""
    subscribers = []
    for item in filter(None, (part.strip() for part in setting.split(","))):
        name, sep, url = item.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ValueError(f"not a name=http(s)://url pair: {item!r}")
        subscribers.append(Subscriber(name, url))
    if len({s.name for s in subscribers}) != len(subscribers):
        raise ValueError("a subscriber name appears twice")
    return subscribers


@dataclass(frozen=True)
class PublisherPolicy:
    """Poll interval, batch size, retry delays, the HTTP timeout and the lease's length."""

    poll_seconds: float = 0.5
    batch_size: int = 100
    retry_base_seconds: float = 0.5
    retry_max_seconds: float = 5.0
    timeout_seconds: float = 5.0
    lease_seconds: float = 15.0

    def retry_delay(self, failures: int) -> float:
        """How long to wait after the `failures`-th failure in a row (1, 2, …)."""
        return float(min(self.retry_base_seconds * 2 ** (failures - 1), self.retry_max_seconds))


class DeliveryError(Exception):
    """The subscriber did not acknowledge the batch (no 2xx, or no answer)."""


async def hold_lease(database: Database, holder: str, now: datetime, lease: timedelta) -> bool:
    """Take or renew the publisher's lease; whether `holder` holds it until `now + lease`."""
    async with database.db_session() as db:
        renewed = await db.execute(
            update(EventPublisherLease)
            .where(
                EventPublisherLease.name == LEASE_NAME,
                (EventPublisherLease.holder == holder) | (EventPublisherLease.expires_at <= now),
            )
            .values(holder=holder, expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if getattr(renewed, "rowcount", 0) == 1:
            await db.commit()
            return True
        try:
            await db.execute(
                insert(EventPublisherLease).values(
                    name=LEASE_NAME, holder=holder, expires_at=now + lease
                )
            )
            await db.commit()
        except IntegrityError:
            return False  # someone else holds it
        return True


async def release_lease(database: Database, holder: str, now: datetime) -> None:
    """Let another replica take over at once (a clean shutdown)."""
    async with database.db_session() as db:
        await db.execute(
            update(EventPublisherLease)
            .where(EventPublisherLease.name == LEASE_NAME, EventPublisherLease.holder == holder)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
        await db.commit()


async def pending(
    database: Database, subscriber: str, visible_until: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """The subscriber's cursor and the next events after it (at most `limit`), as messages."""
    async with database.db_session() as db:
        cursor = await db.scalar(
            select(EventCursor.last_sequence).where(EventCursor.subscriber == subscriber)
        )
        cursor = cursor or 0
        rows = await db.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.sequence > cursor, OutboxEvent.sequence <= visible_until)
            .order_by(OutboxEvent.sequence)
            .limit(limit)
        )
        return cursor, [events.as_message(row) for row in rows]


async def advance_cursor(database: Database, subscriber: str, sequence: int, now: datetime) -> None:
    """Record that the subscriber acknowledged every event up to `sequence` (never backwards)."""
    async with database.db_session() as db:
        moved = await db.execute(
            update(EventCursor)
            .where(EventCursor.subscriber == subscriber, EventCursor.last_sequence < sequence)
            .values(last_sequence=sequence, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) == 0:
            exists = await db.scalar(
                select(EventCursor.subscriber).where(EventCursor.subscriber == subscriber)
            )
            if exists is None:
                await db.execute(
                    insert(EventCursor).values(
                        subscriber=subscriber, last_sequence=sequence, updated_at=now
                    )
                )
        await db.commit()


@dataclass
class _Backoff:
    failures: int = 0
    next_attempt: float = 0.0


@dataclass
class EventPublisher:
    """Delivers the outbox to `subscribers` while this replica holds the lease.

    `token` gives the bearer token for a delivery (the publisher's own `client_credentials`
    token); `transport` replaces the network (tests: `httpx.MockTransport`).
    """

    database: Database
    subscribers: Sequence[Subscriber]
    token: Callable[[], str]
    policy: PublisherPolicy = field(default_factory=PublisherPolicy)
    transport: httpx.AsyncBaseTransport | None = None
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    clock: Callable[[], float] = time.monotonic
    _backoff: dict[str, _Backoff] = field(default_factory=dict)

    async def run(self) -> None:
        """Publish until cancelled (the app's lifespan), then hand the lease back."""
        async with httpx.AsyncClient(
            timeout=self.policy.timeout_seconds, transport=self.transport
        ) as http:
            try:
                while True:
                    delivered = 0
                    try:
                        delivered = await self.round(http)
                    except Exception as exc:  # the database may be down: try again later
                        log.warning("event_publisher_round_failed", error=type(exc).__name__)
                    if not delivered:
                        await asyncio.sleep(self.policy.poll_seconds)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(release_lease(self.database, self.holder, utcnow()))

    async def round(self, http: httpx.AsyncClient) -> int:
        """One round: renew the lease, then one batch to each subscriber that is due; how
        many events were acknowledged (0 when this replica does not hold the lease)."""
        lease = timedelta(seconds=self.policy.lease_seconds)
        if not await hold_lease(self.database, self.holder, utcnow(), lease):
            return 0
        async with self.database.engine.connect() as connection:
            visible_until = await events.visible_until(connection)
        due = [s for s in self.subscribers if self._due(s.name)]
        delivered = await asyncio.gather(*(self._deliver(http, s, visible_until) for s in due))
        return sum(delivered)

    def next_attempt(self, subscriber: str) -> float:
        """When (on `clock`) the subscriber is due: 0 unless its last delivery failed."""
        return self._backoff.get(subscriber, _Backoff()).next_attempt

    def _due(self, name: str) -> bool:
        return self.next_attempt(name) <= self.clock()

    async def _deliver(
        self, http: httpx.AsyncClient, subscriber: Subscriber, visible_until: int
    ) -> int:
        _cursor, batch = await pending(
            self.database, subscriber.name, visible_until, self.policy.batch_size
        )
        if not batch:
            return 0
        try:
            await self._post(http, subscriber, batch)
        except DeliveryError as exc:
            backoff = self._backoff.setdefault(subscriber.name, _Backoff())
            backoff.failures += 1
            delay = self.policy.retry_delay(backoff.failures)
            backoff.next_attempt = self.clock() + delay
            log.warning(
                "event_delivery_failed",
                subscriber=subscriber.name,
                reason=str(exc),
                failures=backoff.failures,
                retry_in_seconds=delay,
                first_sequence=batch[0]["sequence"],
            )
            return 0
        self._backoff.pop(subscriber.name, None)
        await advance_cursor(self.database, subscriber.name, batch[-1]["sequence"], utcnow())
        log.info(
            "events_delivered",
            subscriber=subscriber.name,
            count=len(batch),
            last_sequence=batch[-1]["sequence"],
        )
        return len(batch)

    async def _post(
        self, http: httpx.AsyncClient, subscriber: Subscriber, batch: list[dict[str, Any]]
    ) -> None:
        try:
            response = await http.post(
                subscriber.url,
                json={"events": batch},
                headers={"Authorization": f"Bearer {self.token()}"},
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(type(exc).__name__) from None
        if not response.is_success:
            raise DeliveryError(f"HTTP {response.status_code}")


class PublisherToken:
    """The publisher's bearer token: what a `client_credentials` grant of the client
    `events-publisher` with the scope `events:publish` would return, signed here with the
    service's own key (no secret to hand out), and reissued at half its lifetime."""

    def __init__(self, keys: SigningKeyStore, issuer: TokenIssuer) -> None:
        self._keys = keys
        self._issuer = issuer
        self._token = ""
        self._renew_at = 0.0

    def __call__(self) -> str:
        now = utcnow()
        if not self._token or now.timestamp() >= self._renew_at:
            self._token = issue_access_token(
                self._keys,
                self._issuer,
                subject=PUBLISHER_CLIENT_ID,
                client_id=PUBLISHER_CLIENT_ID,
                scope=PUBLISH_SCOPE,
                roles=[],
                session_id=None,
                now=now,
            )
            self._renew_at = now.timestamp() + self._issuer.ttl.total_seconds() / 2
        return self._token
