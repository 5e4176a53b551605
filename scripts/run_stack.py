"""What `make run` starts, and the supervisor that keeps it running.

    .venv/bin/python scripts/run_stack.py [--check]

The development mail sink (scripts/mail_sink.py: every message the auth service sends, kept
as a file under $DATA_DIR/mail/; `MAIL_SINK=0` leaves it out), each replica of each service,
then Traefik in front of them. `AUTH_REPLICAS` and
`USERS_REPLICAS` (default 1) say how many processes of each service to run; replica k listens
on the service's port + 10 * (k - 1), unless `AUTH_REPLICA_PORTS` or `USERS_REPLICA_PORTS`
list the ports. The gateway is told every replica's URL. More than one replica needs
PostgreSQL: replicas share signing keys, sessions and throttling state through their
database, which SQLite files cannot offer to several processes safely. `--check` only
validates those settings (exit 2 when they are wrong), before `make run` migrates.

The processes write straight to this process's standard output, which they inherit: no line
is copied through Python (a relaying supervisor cost a third of a core under load). Each
process runs in a process group of its own, so whatever it starts goes with it. A process
killed by a signal (a crash, an operator's `kill`) is restarted, as an orchestrator would;
any other exit stops the whole stack, loudly. Ctrl-C (SIGINT) or SIGTERM stops every process
group (SIGTERM, then SIGKILL after 15 s); a second Ctrl-C kills them at once.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"auth": 8001, "users": 8002}
REPLICA_PORT_STEP = 10
GATEWAY_GOMAXPROCS = "1"
RESTART_DELAY_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 15.0
_PR_SET_PDEATHSIG = 1


@dataclass
class Process:
    """One long-running process of the stack."""

    name: str
    command: list[str]
    env: dict[str, str]
    url: str = ""
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)


def _replica_ports(service: str, default_port: int) -> list[int]:
    prefix = service.upper()
    count = int(os.environ.get(f"{prefix}_REPLICAS", "1"))
    if count < 1:
        raise SystemExit(f"{prefix}_REPLICAS must be at least 1, not {count}")
    if listed := os.environ.get(f"{prefix}_REPLICA_PORTS"):
        ports = [int(port) for port in listed.split(",")]
        if len(ports) != count:
            raise SystemExit(
                f"{prefix}_REPLICA_PORTS lists {len(ports)} ports for {count} replicas"
            )
        return ports
    first = int(os.environ.get(f"{prefix}_PORT", default_port))
    return [first + REPLICA_PORT_STEP * k for k in range(count)]


def _require_postgres(service: str) -> None:
    prefix = service.upper()
    url = os.environ.get(f"{prefix}_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if not url.startswith("postgresql"):
        raise SystemExit(
            f"{prefix}_REPLICAS > 1 needs PostgreSQL: set {prefix}_DATABASE_URL "
            f"(postgresql+asyncpg://…). Replicas share keys, sessions and throttling state "
            f"through the database; the default SQLite file cannot serve several processes."
        )


def plan() -> list[Process]:
    """The processes of the stack, services first, from the environment's settings."""
    processes, upstreams = [], {}
    if os.environ.get("MAIL_SINK", "1") != "0":
        processes.append(Process("mail-sink", [sys.executable, "scripts/mail_sink.py"], {}))
    for service, default_port in SERVICES.items():
        ports = _replica_ports(service, default_port)
        if len(ports) > 1:
            _require_postgres(service)
        for index, port in enumerate(ports, start=1):
            processes.append(
                Process(
                    f"{service}{index}",
                    [f"{service}-service", "serve"],
                    {f"{service.upper()}_PORT": str(port)},
                    url=f"http://127.0.0.1:{port}",
                )
            )
        upstreams[service] = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    gateway_env = {
        "AUTH_UPSTREAMS": upstreams["auth"],
        "USERS_UPSTREAMS": upstreams["users"],
        # One scheduler thread: here Traefik shares the cores with the services (and any load
        # generator), and Go's idle threads spinning for work cost more than they bring:
        # ~220 against ~130 µs of CPU per proxied request, measured on two cores.
        "GATEWAY_GOMAXPROCS": os.environ.get("GATEWAY_GOMAXPROCS", GATEWAY_GOMAXPROCS),
    }
    processes.append(Process("gateway", ["sh", "gateway/traefik.sh"], gateway_env))
    return processes


def _die_with_parent() -> None:
    # In the child, before exec: should the supervisor itself be SIGKILLed, the kernel sends
    # SIGTERM here, so no process outlives the stack. (Linux; elsewhere, nothing.)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts the processes, restarts one a signal killed, stops them all on request."""

    def __init__(self, processes: list[Process]) -> None:
        self.processes = processes

    def start(self, process: Process) -> None:
        process.popen = subprocess.Popen(  # noqa: S603 - our own commands, fixed arguments
            process.command,
            cwd=ROOT,
            env={**os.environ, **process.env},
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        say(f"{process.name} started (pid {process.popen.pid})")

    def by_pid(self, pid: int) -> Process | None:
        return next((p for p in self.processes if p.popen and p.popen.pid == pid), None)

    def run(self) -> int:
        """Supervise until Ctrl-C, SIGTERM or a process's own exit; the stack's exit status."""
        # Installed explicitly: a shell starting `make run` in the background hands it SIGINT
        # ignored, and Ctrl-C must still stop the stack.
        signal.signal(signal.SIGINT, _raise_interrupt)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for process in self.processes:
                self.start(process)
            while True:
                pid, status = os.wait()
                ended = self.by_pid(pid)
                if ended is None or ended.popen is None:
                    continue
                ended.popen.returncode = code = os.waitstatus_to_exitcode(status)
                if code < 0:
                    say(f"{ended.name} (pid {pid}) ended by signal {-code}; restarting")
                    time.sleep(RESTART_DELAY_SECONDS)
                    self.start(ended)
                    continue
                say(f"{ended.name} (pid {pid}) exited with status {code}; stopping the stack")
                return code or 1
        except KeyboardInterrupt:
            say("stopping")
            return 0
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM to every process group; SIGKILL what is left at the deadline."""
        signal.signal(signal.SIGINT, _raise_interrupt)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        running = [p.popen for p in self.processes if p.popen and p.popen.returncode is None]
        try:
            # SIGTERM, not SIGINT: a process may have been started with SIGINT ignored.
            self._signal_groups(running, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            for popen in running:
                try:
                    popen.wait(max(deadline - time.monotonic(), 0.01))
                except subprocess.TimeoutExpired:
                    say(f"pid {popen.pid} still running after {STOP_TIMEOUT_SECONDS:.0f}s")
                    break
        except KeyboardInterrupt:
            say("killing")
        # Whatever is left, and anything a process started in its group: killed.
        self._signal_groups(running, signal.SIGKILL)
        for popen in running:
            popen.wait()

    @staticmethod
    def _signal_groups(popens: list[subprocess.Popen[bytes]], signum: int) -> None:
        for popen in popens:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signum)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def say(message: str) -> None:
    """One line of the supervisor's own, told apart from the processes' JSON lines."""
    print(f"run: {message}", flush=True)


def banner(processes: list[Process]) -> None:
    gateway_port = os.environ.get("GATEWAY_PORT", "8000")
    internal_port = os.environ.get("GATEWAY_INTERNAL_PORT", "8080")
    print(f"gateway  http://127.0.0.1:{gateway_port}   (API docs: /auth/docs and /users/docs)")
    for process in processes:
        if process.url:
            print(f"{process.name:<8} {process.url}")
    if any(process.name == "mail-sink" for process in processes):
        smtp_port = os.environ.get("SMTP_PORT", "8025")
        mail_dir = Path(os.environ.get("DATA_DIR") or ".data") / "mail"
        print(f"mail     smtp://127.0.0.1:{smtp_port}   (every message kept in {mail_dir}/)")
    print(f"internal http://127.0.0.1:{internal_port}   (metrics, dashboard, ping: loopback only)")
    print(
        "logs     one JSON line per request, from the service that answered it, with its\n"
        "         request_id (the X-Request-ID header); Traefik logs only the answers it gave\n"
        "         itself (GATEWAY_ACCESS_LOG). Ctrl-C stops everything.",
        flush=True,
    )


def main(argv: list[str]) -> int:
    processes = plan()
    if "--check" in argv:
        return 0
    banner(processes)
    return Supervisor(processes).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
