"""The stack as a client first meets it: routes, health, errors and request ids."""

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from testsupport import ROOT
from testsupport.stack import Stack, free_port, port_open

HEX_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("path", ["/auth/health", "/users/health", "/auth/ready", "/users/ready"])
def test_health_and_readiness_answer_through_the_gateway(gateway: httpx.Client, path: str) -> None:
    response = gateway.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/", "/nope", "/authx", "/users-x/1", "/.well-known/other"])
def test_unrouted_paths_are_a_json_404_from_the_gateway(gateway: httpx.Client, path: str) -> None:
    response = gateway.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {"type": "about:blank", "title": "Not Found", "status": 404}
    assert HEX_REQUEST_ID.fullmatch(response.headers["x-request-id"])


def test_unknown_path_under_a_service_is_its_json_404(gateway: httpx.Client) -> None:
    response = gateway.get("/auth/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_wrong_method_is_a_json_405_naming_the_allowed_ones(gateway: httpx.Client) -> None:
    response = gateway.delete("/users/health")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET"
    assert response.json()["status"] == 405


def test_a_sane_request_id_is_echoed(gateway: httpx.Client) -> None:
    response = gateway.get("/auth/health", headers={"X-Request-ID": "client-id_1.2"})
    assert response.headers["x-request-id"] == "client-id_1.2"


@pytest.mark.parametrize("bad", ["has space", "a" * 129, "<script>", "é", ""])
def test_a_malformed_request_id_is_replaced_never_echoed(gateway: httpx.Client, bad: str) -> None:
    response = gateway.get("/users/health", headers=[(b"X-Request-ID", bad.encode())])
    assert response.status_code == 200
    assert HEX_REQUEST_ID.fullmatch(response.headers["x-request-id"])


def test_the_request_id_appears_in_the_service_log(gateway: httpx.Client, stack: Stack) -> None:
    gateway.get("/users/health", headers={"X-Request-ID": "trace-me-123"})
    # The access line is written after the response: give the log a moment.
    deadline = time.monotonic() + 5
    while '"request_id": "trace-me-123"' not in stack.log():
        assert time.monotonic() < deadline, "request id never reached the log"
        time.sleep(0.05)


def test_a_request_through_the_gateway_is_logged_once_by_the_service_that_answered(
    gateway: httpx.Client, stack: Stack
) -> None:
    request_id = f"once-{uuid.uuid4().hex}"
    gateway.get("/users/health", headers={"X-Request-ID": request_id})
    deadline = time.monotonic() + 5
    while request_id not in stack.log():
        assert time.monotonic() < deadline, "request id never reached the log"
        time.sleep(0.05)
    time.sleep(1)  # time for a second line (Traefik's access log) to arrive, were it written
    lines = [line for line in stack.log().splitlines() if request_id in line]
    assert len(lines) == 1, lines
    assert '"service": "users"' in lines[0]
    assert '"event": "request"' in lines[0]


def test_services_answer_the_same_paths_directly(stack: Stack) -> None:
    stack.require_local()
    assert httpx.get(f"{stack.auth_url}/auth/health").json() == {"status": "ok"}
    assert httpx.get(f"{stack.users_url}/users/health").json() == {"status": "ok"}


def test_ctrl_c_stops_every_process_of_the_stack(
    private_stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    with private_stack() as stack:
        pids = stack.service_pids("auth") + stack.service_pids("users")
        assert len(pids) == 2
        ports = list(stack.ports)
    assert stack.require_local().returncode is not None
    assert not any(port_open(port) for port in ports)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_process_killed_by_a_signal_is_restarted(
    private_stack: Callable[..., AbstractContextManager[Stack]],
) -> None:
    with private_stack() as stack:
        (victim,) = stack.service_pids("users")
        os.kill(victim, signal.SIGKILL)  # by PID: our own process
        deadline = time.monotonic() + 60
        while True:
            pids = stack.service_pids("users")
            if pids and pids != [victim] and port_open(stack.users_port):
                break
            assert time.monotonic() < deadline, "the killed replica was never restarted"
            time.sleep(0.25)
        # Back in the gateway's pool at its next health check.
        while httpx.get(f"{stack.url}/users/health", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "the restarted replica never rejoined the pool"
            time.sleep(0.25)
        assert f"users1 (pid {victim}) ended by signal 9; restarting" in stack.log()


def test_a_process_that_exits_by_itself_stops_the_whole_stack(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("GATEWAY", "AUTH", "USERS", "GATEWAY_INTERNAL")}
    env = {
        **os.environ,
        **{f"{name}_PORT": str(port) for name, port in ports.items()},
        "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'auth.sqlite3'}",
        "USERS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'users.sqlite3'}",
        "GATEWAY_ACCESS_LOG": "no-such-mode",  # traefik.sh refuses it: exit status 2
    }
    for inherited in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(inherited, None)
    log_path = tmp_path / "stack.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],  # noqa: S607 - make from PATH
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        returncode = process.wait(90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    log = log_path.read_text()
    assert returncode != 0, log
    assert re.search(r"run: gateway \(pid \d+\) exited with status 2; stopping the stack", log)
    assert not any(port_open(port) for port in ports.values())
