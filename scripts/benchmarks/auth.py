"""Benchmark the auth service through the real gateway with wrk; print figures and ratios.

    .venv/bin/python -m scripts.benchmarks.auth [--duration 15] [--backend sqlite|postgresql]
    .venv/bin/python -m scripts.benchmarks.auth --refresh-only --backend postgresql --workers 1,2

Starts its own stack (`make run` on free ports, default settings: bcrypt cost 12), with the
gateway's rate limits lifted (they would measure Traefik's limiter, not the service), then:

1. password grants per second, as a ratio of the ideal `cores / one bcrypt verify`, the
   verify timed here, in this run (goal >= 0.8);
2. `/auth/health` p99 latency while that login storm runs (goal < 50 ms);
3. refresh grants per second (goal >= 300/s on 2 cores);
4. JWKS requests per second as a ratio of `/auth/health` requests per second (goal >= 0.9).

`--refresh-only` measures the refresh grants alone, through the gateway and directly, once per
`--workers` count (WEB_CONCURRENCY, PostgreSQL only), each on a stack of its own: how the
throughput scales with worker processes on this machine's cores.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import httpx

from testsupport.databases import DatabaseFactory
from testsupport.load import run_wrk
from testsupport.stack import Stack, running_stack

PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark account's
BCRYPT_COST = 12

# Each connection keeps its own chain of refresh tokens: a token is used once, and its
# successor is taken from the answer (a reused token would revoke the session).
REFRESH_LUA = """
-- One connection per thread, each thread (its own Lua state) with its own session: a
-- token is used once and its successor taken from the answer (a reused token would
-- revoke the session). request() may be called without sending, so it never consumes.
local counter = 0
local tokens = {}

function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end

function init(args)
  local all = {}
  for line in io.lines(args[1]) do table.insert(all, line) end
  token = all[index]
end

request = function()
  return wrk.format("POST", "/auth/token",
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&refresh_token=" .. token)
end

response = function(status, headers, body)
  local next_token = string.match(body, '"refresh_token":"([^"]+)"')
  if next_token then token = next_token end
end
"""

LOGIN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function init(args)
  wrk.body = "grant_type=password&username=" .. args[1] .. "&password=" .. args[2]
end
"""


def wrk(
    url: str,
    *,
    connections: int,
    threads: int,
    seconds: int,
    script: str | None = None,
    args: tuple[str, ...] = (),
) -> tuple[float, int]:
    """Requests per second and errors (non-2xx answers, socket errors), as wrk reports them."""
    result = run_wrk(url, seconds, connections, threads=threads, script=script, script_args=args)
    return result.requests_per_second, result.errors


def bcrypt_verify_seconds(samples: int = 7) -> float:
    """The median time of one bcrypt verify at the service's cost, in this process."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(BCRYPT_COST))
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        bcrypt.checkpw(PASSWORD.encode(), hashed)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


class LatencyProbe(threading.Thread):
    """GET /auth/health back to back (one at a time), recording each latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopped.is_set():
                started = time.perf_counter()
                client.get(self.url).raise_for_status()
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.01)

    def p99(self) -> float:
        return statistics.quantiles(self.latencies, n=100)[98]


def sessions(stack: Stack, email: str, count: int) -> list[str]:
    """`count` refresh tokens, one per session, signed in through the gateway."""

    async def login(client: httpx.AsyncClient) -> str:
        form = {"grant_type": "password", "username": email, "password": PASSWORD}
        response = await client.post("/auth/token", data=form)
        for _ in range(10):  # the address's throttle, after an earlier run's failures: wait
            if response.status_code != 429:
                break
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            response = await client.post("/auth/token", data=form)
        if response.status_code != 200:
            raise RuntimeError(f"sign-in refused: {response.status_code} {response.text}")
        token: str = response.json()["refresh_token"]
        return token

    async def all_logins() -> list[str]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
            return list(await asyncio.gather(*(login(client) for _ in range(count))))

    return asyncio.run(all_logins())


@contextmanager
def database_urls(backend: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """Two fresh databases: SQLite files, or PostgreSQL ones (TEST_POSTGRES_URL's server)."""
    factory = DatabaseFactory(backend, workdir)
    try:
        yield factory.create(), factory.create()
    finally:
        factory.drop_all()


def refresh_only(args: argparse.Namespace, workers: int) -> None:
    """Refresh grants per second with `workers` processes per service, gateway and direct."""
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as scratch:
        workdir = Path(scratch)
        env = {
            "GATEWAY_RATE_AVERAGE": "1000000",
            "GATEWAY_RATE_BURST": "1000000",
            "BCRYPT_COST": "4",  # the sign-ins that make the sessions are not measured here
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(workers),
        }
        with (
            database_urls(args.backend, workdir) as urls,
            running_stack(urls, workdir, **env) as stack,
        ):
            refresh_script = workdir / "refresh.lua"
            refresh_script.write_text(REFRESH_LUA)
            for round_number in range(1, args.rounds + 1):
                for name, base in (("gateway", stack.url), ("direct", stack.auth_url)):
                    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"  # a fresh throttle
                    httpx.post(
                        f"{stack.url}/auth/register", json={"email": email, "password": PASSWORD}
                    ).raise_for_status()
                    tokens_file = workdir / "tokens.txt"
                    tokens_file.write_text("\n".join(sessions(stack, email, 16)) + "\n")
                    rate, errors = wrk(
                        f"{base}/auth/token",
                        connections=16,
                        threads=16,
                        seconds=args.duration,
                        script=str(refresh_script),
                        args=(str(tokens_file),),
                    )
                    print(
                        f"backend {args.backend}, WEB_CONCURRENCY={workers}, round {round_number}, "
                        f"{name:7}: {rate:.0f} refresh grants/s ({errors} errors; goal >= 300/s); "
                        f"load average {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--refresh-only", action="store_true", help="refresh grants alone")
    parser.add_argument("--workers", default="1", help="WEB_CONCURRENCY values, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=2, help="refresh runs per stack")
    args = parser.parse_args()
    if args.refresh_only:
        for workers in args.workers.split(","):
            refresh_only(args, int(workers))
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    cores = os.cpu_count() or 1
    seconds = args.duration

    with tempfile.TemporaryDirectory(prefix="bench-auth-") as scratch:
        workdir = Path(scratch)
        env = {
            "GATEWAY_RATE_AVERAGE": "1000000",
            "GATEWAY_RATE_BURST": "1000000",
            "BCRYPT_COST": str(BCRYPT_COST),
            "LOG_LEVEL": "WARNING",
        }
        with (
            database_urls(args.backend, workdir) as urls,
            running_stack(urls, workdir, **env) as stack,
        ):
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            httpx.post(
                f"{stack.url}/auth/register", json={"email": email, "password": PASSWORD}
            ).raise_for_status()
            verify = bcrypt_verify_seconds()
            ideal = cores / verify

            login_script = workdir / "login.lua"
            login_script.write_text(LOGIN_LUA)
            probe = LatencyProbe(f"{stack.url}/auth/health")
            probe.start()
            login_rate, login_errors = wrk(
                f"{stack.url}/auth/token",
                connections=2 * cores,
                threads=cores,
                seconds=seconds,
                script=str(login_script),
                args=(email, PASSWORD.replace(" ", "+")),
            )
            probe.stopped.set()
            probe.join()

            connections = 16
            tokens_file = workdir / "tokens.txt"
            tokens = sessions(stack, email, connections)
            tokens_file.write_text("\n".join(tokens) + "\n")
            refresh_script = workdir / "refresh.lua"
            refresh_script.write_text(REFRESH_LUA)
            refresh_rate, refresh_errors = wrk(
                f"{stack.url}/auth/token",
                connections=connections,
                threads=connections,
                seconds=seconds,
                script=str(refresh_script),
                args=(str(tokens_file),),
            )

            health_rate, _ = wrk(
                f"{stack.url}/auth/health", connections=16, threads=cores, seconds=seconds
            )
            jwks_rate, _ = wrk(
                f"{stack.url}/.well-known/jwks.json", connections=16, threads=cores, seconds=seconds
            )

    print(f"backend: {args.backend}, cores: {cores}, wrk runs of {seconds}s, through the gateway")
    print(
        f"one bcrypt verify (cost {BCRYPT_COST}): {verify * 1000:.0f} ms -> ideal "
        f"{ideal:.2f} logins/s"
    )
    print(
        f"password grants: {login_rate:.2f}/s ({login_errors} non-2xx), "
        f"ratio to ideal {login_rate / ideal:.2f} (goal >= 0.8)"
    )
    print(
        f"/auth/health p99 during the login storm: {probe.p99() * 1000:.1f} ms "
        f"over {len(probe.latencies)} probes (goal < 50 ms)"
    )
    print(f"refresh grants: {refresh_rate:.0f}/s ({refresh_errors} non-2xx) (goal >= 300/s)")
    print(
        f"JWKS: {jwks_rate:.0f}/s, /auth/health: {health_rate:.0f}/s, "
        f"ratio {jwks_rate / health_rate:.2f} (goal >= 0.9)"
    )


if __name__ == "__main__":
    main()
