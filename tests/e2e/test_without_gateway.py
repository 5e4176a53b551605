"""Each service on its own port, as App Runner, ECS Express Mode and Lambda run it: it refuses
an oversized body without reading it, and sends the API security headers itself.

The uploads are raw HTTP over a socket, so that "without reading" is what the test sees: the
413 arrives while the client is still holding the body back.
"""

import json
import socket
import time

import httpx
import pytest

from service_kit.security_headers import DOCS_CONTENT_SECURITY_POLICY
from testsupport.stack import Stack

TWENTY_MIB = 20 * 1024 * 1024
ONE_MIB = 1024 * 1024
# Generous: the answer must come while the body is held back, not within a tight time.
ANSWER_TIMEOUT_SECONDS = 20.0
API_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "cross-origin-resource-policy": "same-origin",
}
# (service, method, path, content type, the error shape)
UPLOADS = [
    ("users", "PATCH", "/users/me", "application/json", "problem"),
    ("auth", "POST", "/auth/register", "application/json", "problem"),
    ("auth", "POST", "/auth/token", "application/x-www-form-urlencoded", "oauth"),
]


def port_of(stack: Stack, service: str) -> int:
    stack.require_local()
    return stack.auth_port if service == "auth" else stack.users_port


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response, read until its Content-Length is complete."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(status_line.split()[1]), headers, body


def assert_refused(status: int, headers: dict[str, str], body: bytes, shape: str) -> None:
    assert status == 413
    if shape == "oauth":  # RFC 6749 §5.2 on the token endpoint
        assert headers["content-type"] == "application/json"
        assert json.loads(body)["error"] == "invalid_request"
    else:
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["status"] == 413


@pytest.mark.parametrize(
    ("service", "method", "path", "content_type", "shape"), UPLOADS, ids=lambda v: str(v)
)
def test_a_declared_20_mib_body_is_413_before_a_byte_of_it_is_sent(
    stack: Stack, service: str, method: str, path: str, content_type: str, shape: str
) -> None:
    port = port_of(stack, service)
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {TWENTY_MIB}\r\n\r\n".encode()
        )
        # Not one byte of the body is sent: a service that read it would wait forever.
        status, headers, body = read_answer(sock)
    assert_refused(status, headers, body, shape)


@pytest.mark.parametrize(
    ("service", "method", "path", "content_type", "shape"), UPLOADS, ids=lambda v: str(v)
)
def test_a_streamed_body_is_413_once_past_the_limit_while_the_rest_is_held_back(
    stack: Stack, service: str, method: str, path: str, content_type: str, shape: str
) -> None:
    port = port_of(stack, service)
    chunk = b"x" * (64 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        # Just over the service's 1 MiB, then nothing more: the last chunk never comes.
        for _ in range(ONE_MIB // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, headers, body = read_answer(sock)
    assert_refused(status, headers, body, shape)


def test_a_body_under_the_limit_still_reaches_the_service(stack: Stack) -> None:
    port_of(stack, "users")
    response = httpx.patch(
        f"{stack.users_url}/users/me",
        content=b"{}" + b" " * (ONE_MIB - 4096),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 401  # past the limit check: no token


@pytest.mark.parametrize(
    "path", ["/auth/health", "/.well-known/jwks.json", "/auth/nope", "/users/health", "/users/me"]
)
def test_direct_answers_carry_each_security_header_once(stack: Stack, path: str) -> None:
    service = "users" if path.startswith("/users") else "auth"
    port = port_of(stack, service)
    response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    for name, value in API_HEADERS.items():
        assert response.headers.get_list(name) == [value], name


@pytest.mark.parametrize("service", ["auth", "users"])
def test_direct_docs_pages_get_the_policy_that_lets_swagger_ui_load(
    stack: Stack, service: str
) -> None:
    port = port_of(stack, service)
    response = httpx.get(f"http://127.0.0.1:{port}/{service}/docs", timeout=10)
    assert response.status_code == 200
    (policy,) = response.headers.get_list("content-security-policy")
    assert policy == DOCS_CONTENT_SECURITY_POLICY
    assert response.headers.get_list("x-frame-options") == ["DENY"]


def test_after_a_413_the_service_closes_the_connection_rather_than_read_on(
    stack: Stack,
) -> None:
    # A client that keeps streaming after the 413 would otherwise keep the connection, and
    # the service discarding its bytes, for as long as it likes.
    port = port_of(stack, "users")
    chunk = b"x" * (64 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        sock.sendall(
            b"PATCH /users/me HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(ONE_MIB // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, headers, _body = read_answer(sock)
        assert status == 413
        assert headers["connection"] == "close"
        sock.settimeout(0.5)
        closed = False
        deadline = time.monotonic() + 8  # beyond uvicorn's 5 s keep-alive timeout
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                closed = sock.recv(65536) == b""
            except TimeoutError:
                continue
            except OSError:  # reset, or a broken pipe: closed by the service
                closed = True
    assert closed
