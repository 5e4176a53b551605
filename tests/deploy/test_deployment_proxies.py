"""Each deployment's configuration sets the trusted proxies its table of hops assumes.

The table is testsupport/forwarding_chains.py; service-kit's tests run every row through the
rule with these values. Here: the values are really the ones each deployment sets, and the
ECS gateway's rate limit picks the same client as the services behind it.
"""

import re
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from auth_service.settings import Settings as AuthSettings
from service_kit.client_address import TrustedProxies, client_address, forwarded_for
from service_kit.settings import DEFAULT_MAX_BODY_BYTES
from testsupport import ROOT
from testsupport.deploy_templates import DEPLOY, example_settings, rendered
from testsupport.forwarding_chains import (
    COMPOSE_GATEWAY,
    ECS_VPC,
    GATEWAY_CASES,
    TRUSTED_PROXIES,
    GatewayCase,
    service_view_behind,
)
from users_service.settings import Settings as UsersSettings

SERVICES = ("auth", "users")


def ecs_environment(container: str) -> dict[str, str]:
    path = DEPLOY / "ecs" / "task-definitions" / f"{container}.json"
    definition = rendered(path)["containerDefinitions"][0]
    return {item["name"]: item["value"] for item in definition["environment"]}


def express_environment(service: str) -> dict[str, str]:
    container = rendered(DEPLOY / "express-mode" / f"{service}.json")["primaryContainer"]
    return {item["name"]: item["value"] for item in container["environment"]}


def app_runner_environment(service: str) -> dict[str, str]:
    image = rendered(DEPLOY / "apprunner" / f"{service}.json")["SourceConfiguration"]
    variables: dict[str, str] = image["ImageRepository"]["ImageConfiguration"][
        "RuntimeEnvironmentVariables"
    ]
    return variables


def lambda_environment(service: str) -> dict[str, str]:
    variables: dict[str, str] = rendered(DEPLOY / "lambda" / f"{service}.json")["Environment"][
        "Variables"
    ]
    return variables


def compose() -> Any:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_default(value: str) -> str:
    """`${NAME:-default}` as compose fills it when NAME is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


@pytest.mark.parametrize("settings", [AuthSettings, UsersSettings])
def test_local_trusts_the_loopback_gateway_and_make_run_sets_nothing_else(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    assert settings().trusted_proxies == TRUSTED_PROXIES["local"]
    assert "TRUSTED_PROXIES" not in (ROOT / "scripts" / "run_stack.py").read_text()


def test_compose_trusts_only_the_gateways_fixed_address() -> None:
    stack = compose()
    gateway_address = stack["services"]["gateway"]["networks"]["backend"]["ipv4_address"]
    assert compose_default(gateway_address) == COMPOSE_GATEWAY
    for service in SERVICES:
        environment = stack["services"][service]["environment"]
        assert compose_default(environment["TRUSTED_PROXIES"]) == TRUSTED_PROXIES["compose"]
    # Nothing stands in front of the compose gateway: it keeps no X-Forwarded-For.
    assert "GATEWAY_TRUSTED_IPS" not in stack["services"]["gateway"]["environment"]


@pytest.mark.parametrize("service", SERVICES)
def test_ecs_services_trust_their_service_connect_proxy_and_the_vpc(service: str) -> None:
    assert example_settings()["TrustedProxies"] == ECS_VPC
    assert ecs_environment(service)["TRUSTED_PROXIES"] == TRUSTED_PROXIES["ecs"]
    # The peer every request arrives from, the task's own Service Connect proxy, is trusted:
    # with the VPC alone (the old value) every client was 127.0.0.1.
    trusted = TrustedProxies(ecs_environment(service)["TRUSTED_PROXIES"])
    assert client_address("127.0.0.1", ["203.0.113.7", "10.0.1.17"], trusted) == "203.0.113.7"


def test_the_ecs_gateway_trusts_the_load_balancer_and_keys_on_the_entry_it_appended() -> None:
    environment = ecs_environment("gateway")
    assert environment["GATEWAY_TRUSTED_IPS"] == ECS_VPC
    assert environment["GATEWAY_CLIENT_IP_DEPTH"] == "1"


def traefik_rate_limit_source(case: GatewayCase, trusted_ips: str, depth: int) -> str:
    """Traefik's ipStrategy: X-Forwarded-For (kept from a trusted peer only) read `depth`
    entries from the right; 0 means the connection's address."""
    if depth == 0:
        return case.peer
    kept = case.forwarded_for if case.peer in TrustedProxies(trusted_ips) else ""
    entries = [entry.strip() for entry in kept.split(",")]
    return entries[-depth] if len(entries) >= depth else ""


@pytest.mark.parametrize("case", GATEWAY_CASES, ids=lambda case: case.story)
def test_the_ecs_gateways_rate_limit_and_the_services_agree_on_the_client(
    case: GatewayCase,
) -> None:
    gateway = ecs_environment("gateway")
    trusted_ips, depth = gateway["GATEWAY_TRUSTED_IPS"], int(gateway["GATEWAY_CLIENT_IP_DEPTH"])
    assert traefik_rate_limit_source(case, trusted_ips, depth) == case.client
    behind = forwarded_for([(k.encode(), v.encode()) for k, v in service_view_behind(case)])
    for service in SERVICES:
        trusted = TrustedProxies(ecs_environment(service)["TRUSTED_PROXIES"])
        # The services' peer is their Service Connect proxy on loopback.
        assert client_address("127.0.0.1", behind, trusted) == case.client


def test_the_ecs_gateway_adds_hsts_for_the_https_public_url() -> None:
    environment = ecs_environment("gateway")
    assert environment["GATEWAY_PUBLIC_URL"] == example_settings()["PublicUrl"]
    assert environment["GATEWAY_PUBLIC_URL"].startswith("https://")
    dynamic = (ROOT / "gateway" / "dynamic.yml").read_text()
    assert 'hasPrefix "https://" (lower (env "GATEWAY_PUBLIC_URL"))' in dynamic
    assert "forceSTSHeader: true" in dynamic


@pytest.mark.parametrize("service", SERVICES)
def test_express_mode_trusts_its_load_balancer_in_the_vpc(service: str) -> None:
    assert express_environment(service)["TRUSTED_PROXIES"] == TRUSTED_PROXIES["express"]


@pytest.mark.parametrize("service", SERVICES)
def test_app_runner_trusts_its_front_end_on_private_addresses(service: str) -> None:
    assert app_runner_environment(service)["TRUSTED_PROXIES"] == TRUSTED_PROXIES["apprunner"]


@pytest.mark.parametrize("service", SERVICES)
def test_lambda_trusts_no_proxy_the_adapter_reads_the_front_ends_peer(service: str) -> None:
    assert lambda_environment(service)["TRUSTED_PROXIES"] == TRUSTED_PROXIES["lambda-http-api"]
    assert TRUSTED_PROXIES["lambda-http-api"] == TRUSTED_PROXIES["lambda-alb"] == ""


@pytest.mark.parametrize(
    "environment",
    [app_runner_environment, express_environment, lambda_environment],
    ids=["apprunner", "express", "lambda"],
)
@pytest.mark.parametrize("service", SERVICES)
def test_without_the_gateway_each_service_holds_the_gateways_body_limit(
    environment: Any, service: str
) -> None:
    gateway_default = re.search(
        r"GATEWAY_MAX_BODY_BYTES:=(\d+)", (ROOT / "gateway" / "traefik.sh").read_text()
    )
    assert gateway_default
    assert int(environment(service)["MAX_BODY_BYTES"]) == DEFAULT_MAX_BODY_BYTES
    assert int(gateway_default[1]) == DEFAULT_MAX_BODY_BYTES
