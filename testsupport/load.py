"""Load generation for the benchmarks: wrk runs, parsed, and a signed-in account to load with."""

import re
import subprocess
import uuid
from dataclasses import dataclass

import httpx

BENCH_PASSWORD = "correct horse battery staple"  # noqa: S105 - throwaway benchmark accounts


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    timeouts: int = 0


def run_wrk(
    url: str,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    *,
    threads: int = 2,
    script: str | None = None,
    script_args: tuple[str, ...] = (),
) -> WrkResult:
    """One wrk run: its throughput, latency percentiles and every kind of error it saw.

    `script` is a wrk Lua script; `script_args` reach its `init(args)`.
    """
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    output = subprocess.run(  # noqa: S603 - wrk from PATH, our arguments
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return WrkResult(
        requests_per_second=float(_field(r"Requests/sec:\s+([\d.]+)", output)),
        requests=int(_field(r"(\d+) requests in", output)),
        errors=errors,
        p50_ms=_latency_ms(_field(r"50%\s+([\d.]+\w+)", output)),
        p99_ms=_latency_ms(_field(r"99%\s+([\d.]+\w+)", output)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        timeouts=int(socket_errors.group(4)) if socket_errors else 0,
    )


def _field(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise RuntimeError(f"wrk output without {pattern!r}:\n{text}")
    return match.group(1)


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise RuntimeError(f"unreadable wrk latency {text!r}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def signed_in_account(gateway: str) -> str:
    """Register a fresh account through the gateway and return its access token."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        client.post(
            "/auth/register", json={"email": email, "password": BENCH_PASSWORD}
        ).raise_for_status()
        form = {"grant_type": "password", "username": email, "password": BENCH_PASSWORD}
        tokens = client.post("/auth/token", data=form)
        tokens.raise_for_status()
        token: str = tokens.json()["access_token"]
        client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
    return token
