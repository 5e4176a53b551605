"""Shed load instead of queueing it: a bound on the requests a process serves at once.

Past `MAX_CONCURRENT_REQUESTS` requests in flight, a new one waits for a slot at most
`REQUEST_QUEUE_TIMEOUT_SECONDS` (in arrival order), then is answered with 503 and
`Retry-After`, before routing, authentication or the database: a client told "later" can
retry elsewhere (another replica, after a backoff), where an unbounded queue would have made
every request wait seconds, the admitted ones included. The short wait is what keeps the
admitted requests going: refused at once, clients that retry at once (load generators do)
flood the event loop with refusals, and the requests it admitted starve behind them (measured:
a tenth of the throughput). The health and readiness probes are never shed: an overloaded
process is alive, and a load balancer must still see it.

The count is per process (each replica and each worker has its own), and it counts requests
from the moment the app is called until their response ends.
"""

import asyncio
from collections.abc import Callable, Collection

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service_kit.problems import problem

RETRY_AFTER_SECONDS = 1
OVERLOADED_DETAIL = "The service is at capacity; try again shortly."

# (path, detail) -> the 503 answer, with Retry-After; a service whose routes have an error
# shape of their own (RFC 6749's) gives its own.
Shedding = Callable[[str, str], Response]


def problem_shedding(_path: str, detail: str) -> Response:
    """The default answer: an RFC 9457 problem, status 503, `Retry-After: 1`."""
    return problem(503, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class ConcurrencyLimitMiddleware:
    """Serve at most `max_concurrent` requests at once (0: no limit); a request beyond waits
    `queue_timeout` seconds at most for a slot, then gets 503.

    A plain ASGI middleware: a shed request costs no task, no routing and no body read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        queue_timeout: float = 0,
        exempt_paths: Collection[str] = (),
        shedding: Shedding | None = None,
    ) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.queue_timeout = queue_timeout
        self.exempt_paths = frozenset(exempt_paths)
        self.shedding = shedding or problem_shedding
        self.in_flight = 0
        self._slots: asyncio.Semaphore | None = None  # made on first use, in the server's loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.max_concurrent or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        if not await self._admitted(self._slots):
            await self.shedding(scope["path"], OVERLOADED_DETAIL)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self._slots.release()

    async def _admitted(self, slots: asyncio.Semaphore) -> bool:
        if not slots.locked():
            await slots.acquire()  # a free slot: taken without yielding
            return True
        if not self.queue_timeout:
            return False
        try:
            async with asyncio.timeout(self.queue_timeout):
                await slots.acquire()
        except TimeoutError:
            return False
        return True
