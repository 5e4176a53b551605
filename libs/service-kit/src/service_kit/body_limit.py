"""Refuse request bodies over a size limit before they are read into memory.

The gateway has a limit of its own, but a service deployed without it (App Runner, ECS
Express Mode, Lambda) must be as safe: each service refuses a body over its limit with 413,
before routing, dependencies or authentication run.
"""

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.problems import problem

Refusal = Callable[[str, str], Response]


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes the limit.

    An HTTPException, so that FastAPI's body parser lets it through (it turns any other
    exception into a 400); the middleware then answers with its own refusal.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_detail(max_bytes))


def too_large_detail(max_bytes: int) -> str:
    return f"The request body may be at most {max_bytes} bytes."


def problem_refusal(_path: str, detail: str) -> Response:
    """The default answer: an RFC 9457 problem, status 413."""
    return problem(413, detail)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length the client declared; -1 when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class BodySizeLimitMiddleware:
    """413 for a body over `max_bytes`, without reading it (a plain ASGI middleware).

    A declared Content-Length over the limit is refused at once, before the app runs; a
    streamed (chunked) body is cut off as soon as it passes the limit, and nothing more of
    it is read. `refusal(path, detail)` shapes the answer, so that OAuth endpoints can speak
    RFC 6749; whatever the app had begun to answer once the limit was passed is dropped.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, refusal: Refusal | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refusal = refusal or problem_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = too_large_detail(self.max_bytes)
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= self.max_bytes:
            await self._refuse(scope, receive, send, detail)
            return

        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:  # never read past the limit, even if the app asks again
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's answer to BodyTooLarge: the refusal below replaces it
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, send_unless_refused)
        except BodyTooLarge:
            if response_started:
                raise
        if exceeded and not response_started:
            await self._refuse(scope, receive, send, detail)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, detail: str) -> None:
        response = self.refusal(scope["path"], detail)
        # The rest of the body is never read: the connection is not kept for it (uvicorn
        # closes it after this answer instead of discarding what the client still sends).
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
