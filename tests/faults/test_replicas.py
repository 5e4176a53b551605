"""Two replicas of each service on PostgreSQL under a steady load: lose one, restart the database.

Run by `make test-faults` (and `.ci/run`), not by `make test`: it takes about two minutes.
"""

import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from testsupport.postgres_server import PrivatePostgres
from testsupport.stack import Stack, running_stack

LOAD_SECONDS = 45.0
KILL_AFTER_SECONDS = 15.0
WORKERS = 6
MAX_FAILURE_RATE = 0.005


@dataclass
class Load:
    """A bounded, steady load of registrations, logins and profile reads, with its tally."""

    base_url: str
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    accounts: list[tuple[str, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, what: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            self.outcomes["ok" if ok else "failed"] += 1
            if not ok:
                self.failures.append(f"{what}: {detail}")

    def _call(
        self, what: str, expected: int, request: "httpx.Request", client: httpx.Client
    ) -> httpx.Response | None:
        try:
            response = client.send(request)
        except httpx.HTTPError as exc:
            self._record(what, False, repr(exc))
            return None
        self._record(
            what, response.status_code == expected, f"{response.status_code} {response.text[:200]}"
        )
        return response if response.status_code == expected else None

    def one_flow(self, client: httpx.Client) -> None:
        email = f"load-{uuid.uuid4().hex}@example.com"
        password = f"lively-{uuid.uuid4().hex[:12]}-orbit"
        register = client.build_request(
            "POST", "/auth/register", json={"email": email, "password": password}
        )
        if self._call("register", 201, register, client) is None:
            return
        with self.lock:
            self.accounts.append((email, password))
        form = {"grant_type": "password", "username": email, "password": password}
        token = self._call(
            "token", 200, client.build_request("POST", "/auth/token", data=form), client
        )
        if token is None:
            return
        bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
        self._call("me", 200, client.build_request("GET", "/users/me", headers=bearer), client)

    def run_worker(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as client:
            while not self.stop.is_set():
                self.one_flow(client)
                time.sleep(0.05)

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


@pytest.fixture(scope="module")
def replicated_stack(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    databases = (
        private_postgres.create_database(f"auth_{suffix}"),
        private_postgres.create_database(f"users_{suffix}"),
    )
    with running_stack(
        databases,
        tmp_path_factory.mktemp("replicas"),
        AUTH_REPLICAS="2",
        USERS_REPLICAS="2",
        BCRYPT_COST="4",
        GATEWAY_RATE_AVERAGE="10000",
        GATEWAY_RATE_BURST="10000",
        # Without a passive health check (a shed 503 would eject the only replica), a killed
        # replica leaves the pool at the next active check: POSTs meet it until then.
        GATEWAY_HEALTHCHECK_INTERVAL="250ms",
    ) as stack:
        yield stack


def _port_of(pid: int, variable: str) -> int:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    prefix = f"{variable}=".encode()
    return int(next(item for item in environ if item.startswith(prefix))[len(prefix) :])


def _wait_all_servers_up(stack: Stack, timeout: float = 30) -> None:
    internal = f"http://127.0.0.1:{stack.internal_port}/api/http/services"
    deadline = time.monotonic() + timeout
    status: dict[str, dict[str, str]] = {}
    while time.monotonic() < deadline:
        status = {
            name: httpx.get(f"{internal}/{name}@file", timeout=2).json().get("serverStatus", {})
            for name in ("auth", "users")
        }
        if all(
            len(servers) == 2 and set(servers.values()) == {"UP"} for servers in status.values()
        ):
            return
        time.sleep(0.5)
    raise AssertionError(f"replicas did not all come back UP: {status}")


def test_losing_one_replica_of_each_service_under_load(replicated_stack: Stack) -> None:
    stack = replicated_stack
    _wait_all_servers_up(stack)
    load = Load(stack.url)
    with ThreadPoolExecutor(WORKERS) as pool:
        for _ in range(WORKERS):
            pool.submit(load.run_worker)
        time.sleep(KILL_AFTER_SECONDS)
        victims = {
            "auth": stack.service_pids("auth")[0],
            "users": stack.service_pids("users")[0],
        }
        victim_ports = {
            "auth": _port_of(victims["auth"], "AUTH_PORT"),
            "users": _port_of(victims["users"], "USERS_PORT"),
        }
        for pid in victims.values():  # by PID, our own processes only
            os.kill(pid, signal.SIGKILL)
        time.sleep(LOAD_SECONDS - KILL_AFTER_SECONDS)
        load.stop.set()

    failure_rate = load.outcomes["failed"] / load.total
    print(  # how much load the failure met, in the test log (the assertions bound it)
        f"\nfault test: {load.total} requests, {load.outcomes['failed']} failed "
        f"({failure_rate:.3%}), {len(load.accounts)} accounts registered"
    )
    assert load.total > 300, load.outcomes
    assert failure_rate <= MAX_FAILURE_RATE, load.failures[:20]

    # The killed replicas are restarted and rejoin the pool.
    for service, port in victim_ports.items():
        deadline = time.monotonic() + 30
        while httpx.get(f"http://127.0.0.1:{port}/{service}/health", timeout=2).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    _wait_all_servers_up(stack)

    # Every account that got a 201 can log in.
    with httpx.Client(base_url=stack.url, timeout=15) as client, ThreadPoolExecutor(4) as pool:

        def login(account: tuple[str, str]) -> int:
            form = {"grant_type": "password", "username": account[0], "password": account[1]}
            return client.post("/auth/token", data=form).status_code

        statuses = Counter(pool.map(login, load.accounts))
    assert statuses == Counter({200: len(load.accounts)})


def test_the_services_recover_from_a_postgresql_restart(
    replicated_stack: Stack, private_postgres: PrivatePostgres
) -> None:
    stack = replicated_stack
    load = Load(stack.url)
    with ThreadPoolExecutor(2) as pool:
        for _ in range(2):
            pool.submit(load.run_worker)
        time.sleep(3)
        private_postgres.stop()
        time.sleep(3)
        private_postgres.start()
        load.stop.set()

    # No service was restarted: the same processes answer again on their own.
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        while True:
            ready = [client.get(path).status_code for path in ("/auth/ready", "/users/ready")]
            if ready == [200, 200]:
                break
            assert time.monotonic() < deadline, f"still not ready: {ready}"
            time.sleep(0.5)
        after = Load(stack.url)
        for _ in range(5):
            after.one_flow(client)
    assert after.outcomes == Counter({"ok": 15}), after.failures
