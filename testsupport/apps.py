"""A service's app in the test's own process: its lifespan started, an HTTP client on it."""

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

# The peer the app sees: a documentation address (RFC 5737), never a trusted proxy.
CLIENT_PEER = ("203.0.113.7", 50000)


@asynccontextmanager
async def serving(app: FastAPI, base_url: str) -> AsyncIterator[AsyncClient]:
    """The app with its lifespan started, and a client that speaks ASGI to it."""
    transport = ASGITransport(app, client=CLIENT_PEER)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url=base_url) as client,
    ):
        yield client


CHUNK = 64 * 1024


class UploadBody:
    """A large upload in 64 KiB chunks that fails the test if pulled past `allowed` bytes."""

    def __init__(self, total: int, allowed: int) -> None:
        self.total = total
        self.allowed = allowed
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            if self.sent >= self.allowed:
                raise AssertionError(f"the service read past {self.allowed} bytes")
            self.sent += CHUNK
            yield b"x" * CHUNK


def modules_loaded_with(module: str, names: Iterable[str]) -> list[str]:
    """Which of `names` importing `module` loads, in a fresh interpreter (sorted)."""
    probe = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(set({list(names)!r}) & set(sys.modules))))"
    )
    loaded = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    found: list[str] = json.loads(loaded.stdout)
    return found
