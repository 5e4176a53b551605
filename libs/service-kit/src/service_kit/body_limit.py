"""Refuse request bodies over a size limit before they are read into memory."""

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service_kit.problems import problem

Refusal = Callable[[str, str], Response]
"""Shapes the 413 for a path: `refusal(path, detail)`."""


class BodyTooLarge(HTTPException):
    """Raised from `receive` mid-stream; an HTTPException, so the app answers it as a 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body may be at most {max_bytes} bytes.")


class BodySizeLimitMiddleware:
    """413 for a declared or streamed body over `max_bytes` (a plain ASGI middleware).

    `refusal(path, detail)` shapes the answer, so that OAuth endpoints can speak RFC 6749.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        refusal: Refusal | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.refusal = refusal or (lambda _path, detail: problem(413, detail))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                response = self.refusal(scope["path"], BodyTooLarge(self.max_bytes).detail)
                await response(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)
