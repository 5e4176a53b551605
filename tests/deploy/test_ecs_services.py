"""deploy/ecs/services: valid CreateService and UpdateService calls, wired by Service Connect."""

from pathlib import Path
from typing import Any

import pytest
from deploy_templates import (
    SERVICES,
    TASK_DEFINITIONS,
    example_settings,
    rendered,
    validation_errors,
)

from deploy.release import Release


def by_name(paths: list[Path], name: str) -> Any:
    return rendered(next(path for path in paths if path.stem == name))


def environment(name: str) -> dict[str, str]:
    container = by_name(TASK_DEFINITIONS, name)["containerDefinitions"][0]
    return {item["name"]: item["value"] for item in container["environment"]}


def client_aliases(name: str) -> set[str]:
    """The http://name:port URLs a service answers on inside the namespace."""
    configuration = by_name(SERVICES, name)["serviceConnectConfiguration"]
    return {
        f"http://{alias['dnsName']}:{alias['port']}"
        for service in configuration.get("services", [])
        for alias in service["clientAliases"]
    }


def test_there_is_a_service_per_long_running_container() -> None:
    assert {path.stem for path in SERVICES} == {"auth", "users", "gateway"}


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.stem)
def test_service_is_a_valid_create_service_call(path: Path) -> None:
    assert validation_errors("ecs", "CreateService", rendered(path)) == ""


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.stem)
def test_the_release_turns_it_into_a_valid_update_service_call(path: Path) -> None:
    update = Release(example_settings(), None).update_parameters(rendered(path))
    assert validation_errors("ecs", "UpdateService", update) == ""
    assert update["service"] == path.stem
    assert "desiredCount" not in update, "a release never resets the running count"


@pytest.mark.parametrize("path", SERVICES, ids=lambda path: path.stem)
def test_service_runs_privately_and_rolls_back_a_failed_deployment(path: Path) -> None:
    service = rendered(path)
    network = service["networkConfiguration"]["awsvpcConfiguration"]
    assert network["assignPublicIp"] == "DISABLED"
    assert len(network["subnets"]) >= 2, "two zones at least"
    assert service["launchType"] == "FARGATE"
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert service["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert service["desiredCount"] >= 2
    assert service["serviceConnectConfiguration"]["enabled"] is True


def test_only_the_gateway_is_behind_the_load_balancer() -> None:
    assert "loadBalancers" not in by_name(SERVICES, "auth")
    assert "loadBalancers" not in by_name(SERVICES, "users")
    (target,) = by_name(SERVICES, "gateway")["loadBalancers"]
    gateway = by_name(TASK_DEFINITIONS, "gateway")["containerDefinitions"][0]
    assert target["containerName"] == gateway["name"]
    assert target["containerPort"] in {
        mapping["containerPort"] for mapping in gateway["portMappings"]
    }


@pytest.mark.parametrize("name", ["auth", "users"])
def test_service_connect_publishes_the_port_its_task_definition_names(name: str) -> None:
    (published,) = by_name(SERVICES, name)["serviceConnectConfiguration"]["services"]
    container = by_name(TASK_DEFINITIONS, name)["containerDefinitions"][0]
    assert published["portName"] in {mapping["name"] for mapping in container["portMappings"]}
    assert client_aliases(name) == {f"http://{name}:{ {'auth': 8001, 'users': 8002}[name] }"}


def test_the_gateway_and_users_reach_services_by_their_service_connect_names() -> None:
    gateway = environment("gateway")
    assert gateway["AUTH_UPSTREAMS"] in client_aliases("auth")
    assert gateway["USERS_UPSTREAMS"] in client_aliases("users")
    assert environment("users")["JWKS_URL"].startswith(f"{gateway['AUTH_UPSTREAMS']}/")
    assert client_aliases("gateway") == set(), "the gateway is a client only"
