"""Benchmark the gateway's cost and what a second replica buys.

    .venv/bin/python -m scripts.benchmarks.gateway [--duration 10]

Starts stacks of its own (`make run` on free ports) and loads them with wrk. Prints:
- `/users/health` through the gateway (every middleware on) as a ratio of the same call
  made directly to the users service, alternating the two (goal >= 0.7);
- `/users/me` with two users replicas as a ratio of one, on PostgreSQL (goal >= 1.5 where
  cores allow: wrk, Traefik, the replicas and PostgreSQL share this machine's cores);
- Traefik as shipped (GOGC 50, GOMEMLIMIT 256MiB, GOMAXPROCS 1 under make run, access log of
  the gateway's own answers) against its access log on every request and against Go's
  runtime defaults: more gateways in front of the same users process, alternated, each one's
  throughput, CPU per proxied request, and resident memory at rest and after the load.
"""

import argparse
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from testsupport.databases import DatabaseFactory, admin_url, port_open
from testsupport.load import run_wrk, signed_in_account
from testsupport.stack import extra_gateway, running_stack

OVERHEAD_GOAL = 0.7
REPLICA_GOAL = 1.5
CONNECTIONS = 32
ROUNDS = 3


def gateway_overhead(seconds: int, workdir: Path) -> float:
    databases = (
        f"sqlite+aiosqlite:///{workdir / 'auth.sqlite3'}",
        f"sqlite+aiosqlite:///{workdir / 'users.sqlite3'}",
    )
    with running_stack(databases, workdir / "overhead") as stack:
        urls = {
            "gateway": f"{stack.url}/users/health",
            "direct": f"{stack.users_url}/users/health",
        }
        run_wrk(urls["gateway"], 2, CONNECTIONS)  # warm-up
        rates: dict[str, list[float]] = {"gateway": [], "direct": []}
        for _ in range(ROUNDS):
            for name, url in urls.items():
                result = run_wrk(url, seconds, CONNECTIONS)
                if result.errors:
                    raise RuntimeError(f"{name}: {result.errors} errors, figures invalid")
                rates[name].append(result.requests_per_second)
    gateway, direct = statistics.mean(rates["gateway"]), statistics.mean(rates["direct"])
    ratio = gateway / direct
    print(f"/users/health direct:  {direct:8.0f} req/s")
    print(f"/users/health gateway: {gateway:8.0f} req/s  (all middlewares on)")
    print(f"gateway/direct ratio:  {ratio:8.2f}  (goal >= {OVERHEAD_GOAL})")
    return ratio


# Traefik as make run ships it, against its access log on every request, and against Go's
# own runtime defaults.
SHIPPED = {
    "GATEWAY_GOGC": "50",
    "GATEWAY_GOMEMLIMIT": "256MiB",
    "GATEWAY_GOMAXPROCS": "1",
    "GATEWAY_ACCESS_LOG": "gateway-errors",
}
RUNTIMES = {
    "as shipped (GOGC 50, GOMEMLIMIT 256MiB, GOMAXPROCS 1, access log gateway-errors)": SHIPPED,
    "as shipped but GATEWAY_ACCESS_LOG=true": {**SHIPPED, "GATEWAY_ACCESS_LOG": "true"},
    "Go's defaults (GOGC 100, no GOMEMLIMIT, GOMAXPROCS = cores)": {
        **SHIPPED,
        "GATEWAY_GOGC": "100",
        "GATEWAY_GOMEMLIMIT": "off",
        "GATEWAY_GOMAXPROCS": "",
    },
}


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def traefik_runtime(seconds: int, workdir: Path) -> None:
    databases = (
        f"sqlite+aiosqlite:///{workdir / 'runtime-auth.sqlite3'}",
        f"sqlite+aiosqlite:///{workdir / 'runtime-users.sqlite3'}",
    )
    with running_stack(databases, workdir / "runtime") as stack, ExitStack() as gateways:
        urls, pids = {}, {}
        for name, env in RUNTIMES.items():
            url = gateways.enter_context(extra_gateway(stack, **env))
            urls[name] = f"{url}/users/health"
            pids[name] = _gateway_pid(url)
        idle = {name: _rss_mib(pid) for name, pid in pids.items()}
        rates: dict[str, list[float]] = {name: [] for name in urls}
        cpu: dict[str, list[float]] = {name: [] for name in urls}
        peak = dict(idle)
        for _ in range(ROUNDS):
            for name, url in urls.items():
                before = _cpu_seconds(pids[name])
                result = run_wrk(url, seconds, CONNECTIONS)
                if result.errors:
                    raise RuntimeError(f"{name}: {result.errors} errors, figures invalid")
                cpu[name].append((_cpu_seconds(pids[name]) - before) / result.requests * 1e6)
                rates[name].append(result.requests_per_second)
                peak[name] = max(peak[name], _rss_mib(pids[name]))
    for name in RUNTIMES:
        print(
            f"Traefik, {name}: {statistics.mean(rates[name]):6.0f} req/s, "
            f"{statistics.mean(cpu[name]):4.0f} us CPU per request, RSS {idle[name]:.0f} MiB at "
            f"rest, {peak[name]:.0f} MiB after the load"
        )


def _gateway_pid(url: str) -> int:
    """The PID of the Traefik whose public entrypoint is `url`'s address."""
    flag = f"--entryPoints.web.address={url.removeprefix('http://')}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and flag in (entry / "cmdline").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    raise LookupError(f"no Traefik serves {url}")


def replica_scaling(seconds: int, workdir: Path) -> float | None:
    if not port_open(admin_url()):
        print("replicas: skipped, no PostgreSQL reachable (replicas need it)")
        return None
    factory = DatabaseFactory("postgresql", workdir)
    rates: dict[int, float] = {}
    try:
        for replicas in (1, 2):
            databases = (factory.create(), factory.create())
            with running_stack(
                databases, workdir / f"replicas-{replicas}", USERS_REPLICAS=str(replicas)
            ) as stack:
                token = signed_in_account(stack.url)
                url = f"{stack.url}/users/me"
                headers = {"Authorization": f"Bearer {token}"}
                run_wrk(url, 2, CONNECTIONS, headers)  # warm-up: every replica's caches
                result = run_wrk(url, seconds, CONNECTIONS, headers)
                if result.errors:
                    raise RuntimeError(f"{replicas} replicas: {result.errors} errors")
                rates[replicas] = rate = result.requests_per_second
                print(f"/users/me, {replicas} users replica(s): {rate:8.0f} req/s")
    finally:
        factory.drop_all()
    ratio = rates[2] / rates[1]
    print(
        f"two replicas / one:    {ratio:8.2f}  (goal >= {REPLICA_GOAL} where cores allow;"
        f" this machine has {os.cpu_count()} cores for wrk, Traefik, services and PostgreSQL)"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch:
        gateway_overhead(args.duration, Path(scratch))
        replica_scaling(args.duration, Path(scratch))
        traefik_runtime(args.duration, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
