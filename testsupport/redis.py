"""The machine's Redis for tests: reachable or not, and a few commands over plain RESP.

`TEST_REDIS_URL` (default `redis://127.0.0.1:6379/15`) names the server and the database the
tests may use; each test also keys its data by something of its own, so nothing it writes
meets anyone else's. A client library would be a dependency for four commands.
"""

import os
import socket
from urllib.parse import urlsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_url_for_tests() -> str:
    return os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def redis_listening(url: str) -> bool:
    try:
        with socket.create_connection(_address(url), 2):
            return True
    except OSError:
        return False


def redis_command(url: str, *args: str) -> bytes:
    """Run one command in the URL's database; the raw first reply line (`+PONG`, `:1`, …).

    Raises `RuntimeError` on an error reply (`-NOAUTH …`, `-ERR …`), `OSError` on no server.
    """
    database = urlsplit(url).path.lstrip("/") or "0"
    with socket.create_connection(_address(url), 2) as sock, sock.makefile("rwb") as stream:
        for command in (("SELECT", database), args):
            stream.write(f"*{len(command)}\r\n".encode())
            for part in command:
                encoded = part.encode()
                stream.write(b"$%d\r\n%s\r\n" % (len(encoded), encoded))
        stream.flush()
        replies = [stream.readline().rstrip(b"\r\n") for _ in range(2)]
    for reply in replies:
        if not reply or reply.startswith(b"-"):
            raise RuntimeError(f"Redis at {_address(url)} refused: {reply!r}")
    return replies[1]
