"""Per-request context: the request id, the access log line and the last-resort 500."""

import re
import time
import uuid

import structlog
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.problems import problem

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

log = structlog.stdlib.get_logger("service_kit.access")


def incoming_request_id(scope: Scope) -> str | None:
    """The caller's request id when it is sane; anything else is never echoed."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _SANE_REQUEST_ID.fullmatch(candidate) else None
    return None


class RequestContextMiddleware:
    """Tag every response and log line with a request id; turn crashes into a bare 500.

    A plain ASGI middleware rather than `BaseHTTPMiddleware`, which costs a task and a
    queue per request on the hot path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            # The trace goes to the log, with the request id; the client gets none of it.
            log.exception("unhandled_exception", method=scope["method"], path=scope["path"])
            if response_started:
                raise
            response = problem(500, "An unexpected error occurred.")
            response.headers[REQUEST_ID_HEADER] = request_id
            await response(scope, receive, send)
        finally:
            # The path only: a query string may carry something secret.
            client = scope.get("client")
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                client=client[0] if client else None,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
