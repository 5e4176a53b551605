"""The gateway's own behaviour: headers, limits, the internal entrypoint, TLS, CORS, rate limits."""

import datetime
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service_kit.security_headers import DOCS_CONTENT_SECURITY_POLICY
from testsupport.stack import EXTERNAL_GATEWAY_URL, Stack, running_stack

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
ONE_MIB = 1024 * 1024


def _assert_security_headers(response: httpx.Response) -> None:
    # Once each: the services set them too, and Traefik's headers replace theirs.
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    (policy,) = response.headers.get_list("content-security-policy")
    assert "default-src 'none'" in policy


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/health"),
        ("GET", "/users/health"),
        ("GET", "/nope"),
        ("DELETE", "/users/health"),
    ],
)
def test_every_response_carries_the_security_headers(
    gateway: httpx.Client, method: str, path: str
) -> None:
    _assert_security_headers(gateway.request(method, path))


@pytest.mark.parametrize("service", ["auth", "users"])
def test_the_docs_pages_get_a_policy_that_lets_swagger_ui_load(
    gateway: httpx.Client, service: str
) -> None:
    response = gateway.get(f"/{service}/docs")
    assert response.status_code == 200
    (policy,) = response.headers.get_list("content-security-policy")
    assert policy == DOCS_CONTENT_SECURITY_POLICY  # the gateway's is the services' own
    assert gateway.get(f"/{service}/openapi.json").status_code == 200


def test_a_body_over_one_mib_is_a_json_413_from_the_gateway(gateway: httpx.Client) -> None:
    response = gateway.post(
        "/users/me", content=b"x" * (ONE_MIB + 1), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


def test_a_body_just_under_the_limit_reaches_the_service(gateway: httpx.Client) -> None:
    response = gateway.post(
        "/users/health", content=b"x" * (ONE_MIB - 1024), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 405  # the service's answer, not the gateway's 413


@pytest.mark.parametrize(
    "path", ["/metrics", "/ping", "/dashboard/", "/api/rawdata", "/api/overview"]
)
def test_nothing_internal_answers_on_the_public_port(gateway: httpx.Client, path: str) -> None:
    response = gateway.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_internal_port_serves_ping_metrics_and_the_api_on_loopback(stack: Stack) -> None:
    stack.require_local()
    internal = f"http://127.0.0.1:{stack.internal_port}"
    assert httpx.get(f"{internal}/ping").text == "OK"
    metrics = httpx.get(f"{internal}/metrics").text
    assert (
        "traefik_service_requests_total" in metrics
        or "traefik_entrypoint_requests_total" in metrics
    )
    assert httpx.get(f"{internal}/api/http/routers").status_code == 200


def test_the_gateway_runs_with_the_go_runtime_settings_of_make_run(stack: Stack) -> None:
    stack.require_local()
    metrics = httpx.get(f"http://127.0.0.1:{stack.internal_port}/metrics").text
    values = dict(
        line.split(" ", 1) for line in metrics.splitlines() if line and not line.startswith("#")
    )
    assert float(values["go_gc_gogc_percent"]) == 50
    assert float(values["go_gc_gomemlimit_bytes"]) == 256 * 1024 * 1024
    assert float(values["go_sched_gomaxprocs_threads"]) == 1


@pytest.mark.parametrize("path", ["/users/a%00b", "/users/a%2fb", "/auth/a%5cb"])
def test_malformed_paths_are_refused_by_the_gateway(gateway: httpx.Client, path: str) -> None:
    assert gateway.get(path).status_code == 400


def test_a_header_flood_is_refused_before_any_service(gateway: httpx.Client) -> None:
    headers = {f"X-Flood-{i}": "y" * 1000 for i in range(80)}
    assert gateway.get("/auth/health", headers=headers).status_code == 431


def test_large_json_answers_are_compressed(gateway: httpx.Client) -> None:
    response = gateway.get("/auth/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
    assert response.json()["openapi"].startswith("3.")


@pytest.fixture(scope="module")
def edge_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own with TLS, CORS, a tight rate limit and a short read timeout.

    On SQLite only: what it tests is the gateway's, whatever database the services use.
    """
    if EXTERNAL_GATEWAY_URL:
        pytest.skip("needs a stack of its own; the gateway under test is external")
    workdir = tmp_path_factory.mktemp("edge-stack")
    cert, key = _self_signed_certificate(workdir)
    databases = (
        f"sqlite+aiosqlite:///{workdir / 'auth.sqlite3'}",
        f"sqlite+aiosqlite:///{workdir / 'users.sqlite3'}",
    )
    with running_stack(
        databases,
        workdir,
        GATEWAY_TLS_CERT_FILE=str(cert),
        GATEWAY_TLS_KEY_FILE=str(key),
        GATEWAY_CORS_ORIGINS="https://app.example,https://admin.example",
        GATEWAY_RATE_AVERAGE="2",
        GATEWAY_RATE_BURST="4",
        GATEWAY_READ_TIMEOUT="2s",
        # An https issuer: the services send HSTS too, and it must still come once.
        PUBLIC_URL="https://auth.example.com",
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def tls_client(edge_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=edge_stack.url, verify=False, timeout=10) as client:  # noqa: S501
        yield client


def test_with_tls_plain_http_redirects_to_https(edge_stack: Stack) -> None:
    response = httpx.get(f"{edge_stack.plain_url}/auth/health", timeout=5)
    assert response.status_code in (301, 308)
    assert response.headers["location"].startswith("https://")


def test_with_tls_responses_carry_hsts(tls_client: httpx.Client) -> None:
    response = tls_client.get("/auth/health")
    assert response.status_code == 200
    (hsts,) = response.headers.get_list("strict-transport-security")
    assert hsts.startswith("max-age=31536000")
    _assert_security_headers(response)


def test_cors_preflight_from_an_allowed_origin(tls_client: httpx.Client) -> None:
    response = tls_client.options(
        "/users/me",
        headers={
            "Origin": "https://admin.example",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://admin.example"
    assert "PATCH" in response.headers["access-control-allow-methods"]
    assert "Authorization" in response.headers["access-control-allow-headers"]


def test_cors_ignores_other_origins(tls_client: httpx.Client) -> None:
    response = tls_client.options(
        "/users/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_when_no_origin_is_configured(gateway: httpx.Client) -> None:
    response = gateway.get("/auth/health", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("path", ["/auth/token", "/auth/register"])
def test_a_flood_on_the_credential_endpoints_meets_429_with_retry_after(
    tls_client: httpx.Client, path: str
) -> None:
    def attempt(n: int) -> httpx.Response:
        # A fresh X-Forwarded-For each time: untrusted, it must not buy a fresh bucket.
        headers = {"content-type": "application/json", "X-Forwarded-For": f"203.0.113.{n}"}
        return tls_client.post(path, content=b"", headers=headers)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(attempt, range(24)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert all(int(r.headers["retry-after"]) >= 1 for r in limited)
    # Traefik's own words, as the OpenAPI documents list them (service_kit.openapi).
    assert all(r.headers["content-type"].startswith("text/plain") for r in limited)
    time.sleep(3)  # the bucket refills: a person who waits gets through
    assert attempt(0).status_code != 429


def test_the_gateway_logs_the_answers_it_gives_itself(
    tls_client: httpx.Client, edge_stack: Stack
) -> None:
    with ThreadPoolExecutor(12) as pool:
        statuses = list(
            pool.map(lambda _: tls_client.post("/auth/register", json={}).status_code, range(24))
        )
    assert 429 in statuses
    deadline = time.monotonic() + 5
    while '"DownstreamStatus":429' not in edge_stack.log():
        assert time.monotonic() < deadline, "the rate limiter's 429 never reached the log"
        time.sleep(0.05)
    time.sleep(3)  # the bucket refills for the tests after this one


def test_the_rate_limit_leaves_other_routes_alone(tls_client: httpx.Client) -> None:
    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(lambda _: tls_client.get("/auth/health").status_code, range(24)))
    assert set(statuses) == {200}


def test_a_slow_client_is_cut_off_at_the_read_timeout(edge_stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", edge_stack.gateway_port), timeout=10) as sock:
        sock.sendall(b"GET /auth/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        started = time.monotonic()
        received = sock.recv(4096)
        elapsed = time.monotonic() - started
    assert elapsed < 8
    assert received == b"" or received.startswith(b"HTTP/1.1 408")


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
