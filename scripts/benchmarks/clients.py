"""Benchmark service-to-service tokens: client_credentials grants and introspections per second.

    .venv/bin/python -m scripts.benchmarks.clients [--duration 10] [--backend sqlite|postgresql]
        [--auth-replicas N] [--workers N]

Starts its own stack (`make run` on free ports, default settings, one auth process unless
`--auth-replicas` or `--workers` (WEB_CONCURRENCY, PostgreSQL) says more) with the gateway's
rate limits lifted and `LOG_LEVEL=WARNING`,
registers a confidential client with the real `auth-service clients create`, then loads with
wrk, through the gateway and directly on the (first) auth process's own port:

1. `client_credentials` grants with `client_secret_basic` (goal >= 500/s on 2 cores);
2. introspections of a person's live access token (goal >= 1,000/s);
3. `/auth/health`, the same way, as the baseline of the machine's state.

Each load gets a 2 s warm-up first. Then, to say where the time goes, the CPU per request
inside the auth app alone (in-process ASGI calls on a migrated database of the same
backend, no gateway, no sockets) and of its parts: the client's lookup (the one statement
of an authentication, read: no process cache) and the RS256 signature of an access token.
Introspection is measured twice: as the load meets it (the caller's secret, the token and
its session kept by the process: `VERIFIED_CLIENT_CACHE_SECONDS`,
`INTROSPECTION_CACHE_SECONDS`), and with every cache emptied before each call (what a
token asked about for the first time costs).

A run that met any non-2xx answer or socket error is reported as invalid.
"""

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from auth_service import client_auth, clients, registration
from auth_service.clock import utcnow
from auth_service.main import create_app
from auth_service.migrations import HISTORY
from auth_service.settings import Settings
from auth_service.tokens import issue_access_token
from testsupport.databases import DatabaseFactory
from testsupport.load import BENCH_PASSWORD, run_wrk, signed_in_account
from testsupport.stack import Stack, running_stack

# wrk sends the same form with every request; the client authenticates with HTTP Basic.
POST_FORM_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function init(args)
  wrk.body = args[1]
end
"""
CONNECTIONS = 16


@dataclass(frozen=True)
class Figure:
    name: str
    where: str
    requests_per_second: float
    errors: int
    p99_ms: float


def register_client(stack: Stack) -> tuple[str, str]:
    """A confidential client that may get users:read tokens and introspect; id and secret."""
    client_id = f"bench-{uuid.uuid4().hex[:8]}"
    created = stack.cli(
        "auth",
        "clients",
        "create",
        client_id,
        "--type",
        "confidential",
        "--grant-types",
        "client_credentials",
        "--scopes",
        "users:read",
    )
    if created.returncode != 0:
        sys.exit(f"clients create failed: {created.stderr}")
    secret: str = json.loads(created.stdout)["client_secret"]
    return client_id, secret


def measure(stack: Stack, workdir: Path, seconds: int) -> list[Figure]:
    """Each load through the gateway and directly, with `/auth/health` as the baseline."""
    client_id, secret = register_client(stack)
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    token = signed_in_account(stack.url)
    script = workdir / "post_form.lua"
    script.write_text(POST_FORM_LUA)
    loads = [
        ("client_credentials grants", "/auth/token", "grant_type=client_credentials"),
        ("introspections", "/auth/introspect", f"token={token}"),
    ]
    figures = []
    for where, base_url in (("gateway", stack.url), ("direct", stack.auth_url)):
        for name, path, form in loads:
            url = f"{base_url}{path}"
            run_wrk(url, 2, CONNECTIONS, headers, script=str(script), script_args=(form,))
            result = run_wrk(
                url,
                seconds,
                CONNECTIONS,
                headers,
                script=str(script),
                script_args=(form,),
            )
            figures.append(
                Figure(name, where, result.requests_per_second, result.errors, result.p99_ms)
            )
        run_wrk(f"{base_url}/auth/health", 2, CONNECTIONS)
        health = run_wrk(f"{base_url}/auth/health", seconds, CONNECTIONS)
        figures.append(
            Figure("/auth/health", where, health.requests_per_second, health.errors, health.p99_ms)
        )
    return figures


async def in_process_breakdown(database_url: str, requests: int = 300) -> dict[str, float]:
    """CPU microseconds per request inside the auth app, and of its two costly parts."""
    settings = Settings(database_url=database_url, log_level="WARNING")
    app = create_app(settings)
    transport = httpx.ASGITransport(app, client=("203.0.113.7", 50000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://auth.bench") as http,
    ):
        issuance = app.state.issuance
        checked = registration.registration(
            "bench",
            "confidential",
            grant_types=["client_credentials"],
            scopes=["users:read"],
            existing_scopes=settings.scope_set,
            default_scopes=settings.default_client_scope_set,
            max_access_token_ttl_seconds=settings.access_token_ttl_seconds,
        )
        database = app.state.database
        async with database.db_session() as db:
            created = await clients.create(
                db, checked, issuance.clients.hasher, actor="bench", now=utcnow()
            )
        assert created.secret is not None
        auth = httpx.BasicAuth("bench", created.secret)
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        account = {"email": email, "password": BENCH_PASSWORD}
        (await http.post("/auth/register", json=account)).raise_for_status()
        login = {"grant_type": "password", "username": email, "password": BENCH_PASSWORD}
        token = (await http.post("/auth/token", data=login)).json()["access_token"]
        credentials = client_auth.PresentedCredentials(
            "bench", "client_secret_basic", created.secret
        )

        async def grant() -> None:
            data = {"grant_type": "client_credentials"}
            (await http.post("/auth/token", data=data, auth=auth)).raise_for_status()

        async def introspection() -> None:
            (
                await http.post("/auth/introspect", data={"token": token}, auth=auth)
            ).raise_for_status()

        caches = app.state.introspector.caches
        kept = (issuance.clients.verified_clients, caches.live_sessions, caches.tokens)

        async def first_introspection() -> None:
            for cache in kept:
                cache.clear()
            await introspection()

        reading = dataclasses.replace(
            issuance.clients, verified_clients=client_auth.verified_client_cache(0)
        )

        async def health() -> None:
            (await http.get("/auth/health")).raise_for_status()

        async def lookup() -> None:
            async with database.db_session() as db:
                await client_auth.authenticate(
                    db,
                    reading,
                    credentials,
                    endpoint="",
                    client_address=None,
                    now=utcnow(),
                )

        async def signature() -> None:
            issue_access_token(
                issuance.keys,
                issuance.issuer,
                subject="bench",
                client_id="bench",
                scope="users:read",
                roles=[],
                session_id=None,
                now=utcnow(),
            )

        parts = {
            "client_credentials grant (whole request)": grant,
            "introspection (whole request, kept)": introspection,
            "introspection (whole request, nothing kept)": first_introspection,
            "/auth/health (whole request, baseline)": health,
            "client authentication: its one statement": lookup,
            "RS256 signature of an access token": signature,
        }
        results = {}
        for name, call in parts.items():
            for _ in range(50):
                await call()
            best = float("inf")
            for _ in range(3):
                started = time.process_time()
                for _ in range(requests):
                    await call()
                best = min(best, (time.process_time() - started) / requests)
            results[name] = best * 1e6
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--auth-replicas", type=int, default=1, help="auth processes (more than one: PostgreSQL)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="WEB_CONCURRENCY of each service (PostgreSQL)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    seconds = args.duration
    with tempfile.TemporaryDirectory(prefix="bench-clients-") as scratch:
        workdir = Path(scratch)
        env = {
            "GATEWAY_RATE_AVERAGE": "1000000",
            "GATEWAY_RATE_BURST": "1000000",
            "LOG_LEVEL": "WARNING",
            "AUTH_REPLICAS": str(args.auth_replicas),
            "WEB_CONCURRENCY": str(args.workers),
        }
        databases = DatabaseFactory(args.backend, workdir)
        try:
            urls = (databases.create(), databases.create())
            with running_stack(urls, workdir, **env) as stack:
                load_before = os.getloadavg()[0]
                figures = measure(stack, workdir, seconds)
                load_after = os.getloadavg()[0]
            breakdown_database = databases.create()
            HISTORY.upgrade(breakdown_database)
            breakdown = asyncio.run(in_process_breakdown(breakdown_database))
        finally:
            databases.drop_all()

    goals = {"client_credentials grants": 500, "introspections": 1000}
    print(
        f"backend: {args.backend}, cores: {os.cpu_count()}, wrk -t2 -c{CONNECTIONS} runs of "
        f"{seconds}s, {args.auth_replicas} auth replica(s) of WEB_CONCURRENCY={args.workers} "
        f"(direct: the first); load average {load_before:.2f} before the loads, "
        f"{load_after:.2f} after"
    )
    for figure in figures:
        goal = goals.get(figure.name)
        verdict = f" (goal >= {goal}/s)" if goal else " (baseline)"
        invalid = f", INVALID: {figure.errors} errors" if figure.errors else ""
        print(
            f"{figure.name:<26} {figure.where:<8} {figure.requests_per_second:7.0f}/s "
            f"p99 {figure.p99_ms:6.1f} ms{verdict}{invalid}"
        )
    print("CPU per request inside the auth app (best of 3 x 300, in-process):")
    for name, microseconds in breakdown.items():
        print(f"  {name:<42} {microseconds:6.0f} us")


if __name__ == "__main__":
    main()
