"""Benchmark the gateway's cost and what a second replica buys.

    .venv/bin/python scripts/bench_gateway.py [--duration 10]

Starts stacks of its own (`make run` on free ports) and loads them with wrk. Prints:
- `/users/health` through the gateway (every middleware on) as a ratio of the same call
  made directly to the users service, alternating the two (goal >= 0.7);
- `/users/me` with two users replicas as a ratio of one, on PostgreSQL (goal >= 1.5 where
  cores allow: wrk, Traefik, the replicas and PostgreSQL share this machine's cores).
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # testsupport and the services, run as a script

from testsupport.databases import DatabaseFactory, admin_url, port_open  # noqa: E402
from testsupport.load import run_wrk, signed_in_account  # noqa: E402
from testsupport.stack import running_stack  # noqa: E402

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
