"""Shed load instead of queueing it: a bound on the requests a process serves at once.

Past `MAX_CONCURRENT_REQUESTS` requests in flight, a new one is answered at once with 503 and
`Retry-After`, before routing, authentication or the database: a client told "later" in a
millisecond can retry elsewhere (another replica, after a backoff), where a queue would have
made every request wait seconds, the admitted ones included. The health and readiness probes
are never shed: an overloaded process is alive, and a load balancer must still see it.

The count is per process (each replica and each worker has its own), and it counts requests
from the moment the app is called until their response ends.
"""

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
    """Answer 503 at once to any request beyond `max_concurrent` in flight (0: no limit).

    A plain ASGI middleware: a shed request costs no task, no routing and no body read.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        exempt_paths: Collection[str] = (),
        shedding: Shedding | None = None,
    ) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.exempt_paths = frozenset(exempt_paths)
        self.shedding = shedding or problem_shedding
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.max_concurrent or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent:
            await self.shedding(scope["path"], OVERLOADED_DETAIL)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
