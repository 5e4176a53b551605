"""The mixed load of `make bench-system`, for Locust: what a population of clients does.

Each simulated client signs up and signs in (bcrypt, as shipped: cost 12), then, pausing
0.1-0.3 s between requests, mostly reads its profile (120 of 203), refreshes its tokens (30),
fetches the key set (30), updates its profile (20), now and then signs in again (2) or signs
up anew (1). Each client comes from an
address of its own (`X-Forwarded-For`, believed from 127.0.0.1 by the benchmark's gateway),
so each has its own rate-limit bucket, as distinct clients do.

Every request is appended to the CSV file named by `BENCH_SAMPLES` (start time, endpoint,
latency in ms, ok) for the charts and tables of scripts/benchmarks/system.py.
"""

import atexit
import csv
import itertools
import os
import threading
import uuid
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

PASSWORD = "correct horse battery staple"  # noqa: S105 - throwaway benchmark accounts
ADDRESSES = itertools.count()
# Closed at exit: Locust runs this module for the whole run.
_samples_file = Path(os.environ.get("BENCH_SAMPLES", os.devnull)).open("w", newline="")  # noqa: SIM115
_samples = csv.writer(_samples_file)
_samples_lock = threading.Lock()
atexit.register(_samples_file.close)


def record(
    name: str, response_time: float, exception: BaseException | None, start_time: float, **_: Any
) -> None:
    """One row per request, as Locust times it."""
    with _samples_lock:
        _samples.writerow(
            (f"{start_time:.4f}", name, f"{response_time:.2f}", int(exception is None))
        )


events.request.add_listener(record)  # type: ignore[no-untyped-call]


class PlatformClient(FastHttpUser):
    """One client of the platform: its own account, tokens and address."""

    # A client pauses between requests, as an app does; the offered load is then
    # clients / (pause + latency), ~150 requests/s for 32 clients, bcrypt ~2/3 busy.
    wait_time = between(0.1, 0.3)

    def on_start(self) -> None:
        number = next(ADDRESSES)
        # 198.18.0.0/15: addresses for benchmarks (RFC 2544), never a real client's.
        self.headers = {"X-Forwarded-For": f"198.18.{number // 250}.{number % 250 + 1}"}
        self.sign_up()

    def sign_up(self) -> None:
        self.email = f"mix-{uuid.uuid4().hex[:16]}@example.com"
        self.client.post(
            "/auth/register",
            json={"email": self.email, "password": PASSWORD},
            headers=self.headers,
            name="POST /auth/register",
        )
        self.sign_in()

    def sign_in(self) -> None:
        form = {"grant_type": "password", "username": self.email, "password": PASSWORD}
        self.take_tokens(
            self.client.post(
                "/auth/token", data=form, headers=self.headers, name="POST /auth/token password"
            )
        )

    def take_tokens(self, response: Any) -> None:
        if response.status_code == 200:
            tokens = response.json()
            self.refresh_token = tokens["refresh_token"]
            self.bearer = {**self.headers, "Authorization": f"Bearer {tokens['access_token']}"}

    @task(120)
    def read_profile(self) -> None:
        self.client.get("/users/me", headers=self.bearer, name="GET /users/me")

    @task(30)
    def refresh(self) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        response = self.client.post(
            "/auth/token", data=form, headers=self.headers, name="POST /auth/token refresh"
        )
        if response.status_code == 200:
            self.take_tokens(response)
        else:
            self.sign_in()  # the chain is broken: start a new session, as a client would

    @task(30)
    def key_set(self) -> None:
        self.client.get(
            "/.well-known/jwks.json", headers=self.headers, name="GET /.well-known/jwks.json"
        )

    @task(20)
    def update_profile(self) -> None:
        body = {"display_name": f"Client {uuid.uuid4().hex[:8]}"}
        self.client.patch("/users/me", json=body, headers=self.bearer, name="PATCH /users/me")

    @task(2)
    def sign_in_again(self) -> None:
        self.sign_in()

    @task(1)
    def sign_up_again(self) -> None:
        self.sign_up()

    # client_credentials: once the auth service has that grant, add its task here, e.g.
    #   @task(10)
    #   def machine_token(self) -> None:
    #       form = {"grant_type": "client_credentials", "client_id": …, "client_secret": …}
    #       self.client.post("/auth/token", data=form, headers=self.headers,
    #                        name="POST /auth/token client_credentials")
