"""The ECS services, resources of deploy/cloudformation/platform.yaml (the stack owns them).

Each AWS::ECS::Service is turned into the CreateService call CloudFormation makes (its
properties in camelCase, its references filled with the example settings) and validated
with botocore against the ECS model; then the project's rules: private, rolled back on
failure, wired by Service Connect to the names the task definitions use.
"""

from functools import cache
from typing import Any

import pytest
from cfnlint.decode import decode_str  # type: ignore[import-untyped]

from deploy.release import CONTAINERS
from testsupport.deploy_templates import (
    DEPLOY,
    EXAMPLE_TASK_DEFINITION_ARN,
    TASK_DEFINITIONS,
    example_settings,
    rendered,
    validation_errors,
)

TEMPLATE = DEPLOY / "cloudformation" / "platform.yaml"
NAMES = ("auth", "users", "gateway")
PORTS = {"auth": 8001, "users": 8002}


@cache
def template() -> dict[str, Any]:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors
    result: dict[str, Any] = decoded
    return result


# Resources of the stack that no setting names: example values of their Ref or GetAtt.
EXAMPLE_RESOURCES = {
    "Namespace.Arn": (
        "arn:aws:servicediscovery:eu-west-1:123456789012:namespace/ns-abcdefghijklmnop"
    ),
    "GatewaySecurityGroup": "sg-0a1b2c3d4e5f60722",
    "GatewayTargetGroup": (
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
        "targetgroup/auth-platform-gateway/0123456789abcdef"
    ),
}


def reference(name: str) -> Any:
    """What a Ref or GetAtt stands for: the setting its stack output fills, else a parameter's."""
    if name.endswith("TaskDefinitionArn"):
        return EXAMPLE_TASK_DEFINITION_ARN
    if name in EXAMPLE_RESOURCES:
        return EXAMPLE_RESOURCES[name]
    settings = example_settings()
    if name == "AWS::Region":
        return settings["Region"]
    for output, body in template()["Outputs"].items():
        value = body["Value"]
        if value in ({"Ref": name}, {"Fn::GetAtt": name.split(".")}):
            return settings[output]
    if name in settings:
        return settings[name]
    return template()["Parameters"][name]["Default"]


def resolve(value: Any, *, keep_keys: bool = False) -> Any:
    """CloudFormation properties as ECS API parameters (log driver options keep their keys)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return reference(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            return reference(".".join(value["Fn::GetAtt"]))
        return {
            (key if keep_keys else key[0].lower() + key[1:]): resolve(
                item, keep_keys=key == "Options"
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [resolve(item) for item in value]
    return value


def resource(name: str) -> dict[str, Any]:
    body: dict[str, Any] = template()["Resources"][f"{name.capitalize()}Service"]
    return body


def service(name: str) -> Any:
    """The CreateService call of a service resource."""
    properties = resolve(dict(resource(name)["Properties"]))
    properties["cluster"] = example_settings()["ClusterName"]
    properties["desiredCount"] = int(properties["desiredCount"])
    return properties


def environment(name: str) -> dict[str, str]:
    path = next(path for path in TASK_DEFINITIONS if path.stem == name)
    container = rendered(path)["containerDefinitions"][0]
    return {item["name"]: item["value"] for item in container["environment"]}


def client_aliases(name: str) -> set[str]:
    """The http://name:port URLs a service answers on inside the namespace."""
    configuration = service(name)["serviceConnectConfiguration"]
    return {
        f"http://{alias['dnsName']}:{alias['port']}"
        for published in configuration.get("services", [])
        for alias in published["clientAliases"]
    }


def test_the_stack_holds_a_service_per_long_running_container() -> None:
    services = {
        body["Properties"]["ServiceName"]
        for body in template()["Resources"].values()
        if body["Type"] == "AWS::ECS::Service"
    }
    assert services == set(NAMES)


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda container: container.name)
def test_a_service_exists_once_the_release_sets_its_task_definition(container: Any) -> None:
    body = resource(container.name)
    parameter = container.stack_parameter
    assert body["Properties"]["TaskDefinition"] == {"Ref": parameter}
    assert template()["Parameters"][parameter]["Default"] == ""
    condition = template()["Conditions"][body["Condition"]]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}


@pytest.mark.parametrize("name", NAMES)
def test_service_is_a_valid_create_service_call(name: str) -> None:
    assert validation_errors("ecs", "CreateService", service(name)) == ""


@pytest.mark.parametrize("name", NAMES)
def test_service_runs_privately_and_rolls_back_a_failed_deployment(name: str) -> None:
    properties = service(name)
    network = properties["networkConfiguration"]["awsvpcConfiguration"]
    assert network["assignPublicIp"] == "DISABLED"
    assert network["subnets"] == example_settings()["PrivateSubnetIds"]
    assert len(network["subnets"]) >= 2, "two zones at least"
    assert properties["launchType"] == "FARGATE"
    assert properties["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert properties["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert properties["desiredCount"] >= 2
    assert properties["serviceConnectConfiguration"]["enabled"] is True
    assert properties["serviceConnectConfiguration"]["logConfiguration"]["logDriver"] == "awslogs"


def test_only_the_gateway_is_behind_the_load_balancer() -> None:
    assert "loadBalancers" not in service("auth")
    assert "loadBalancers" not in service("users")
    (target,) = service("gateway")["loadBalancers"]
    assert resource("gateway")["Properties"]["LoadBalancers"][0]["TargetGroupArn"] == {
        "Ref": "GatewayTargetGroup"
    }
    gateway = rendered(next(p for p in TASK_DEFINITIONS if p.stem == "gateway"))
    container = gateway["containerDefinitions"][0]
    assert target["containerName"] == container["name"]
    assert target["containerPort"] in {
        mapping["containerPort"] for mapping in container["portMappings"]
    }
    # Created only once its target group belongs to a listener.
    assert resource("gateway")["DependsOn"] == "HttpListener"


@pytest.mark.parametrize("name", ["auth", "users"])
def test_service_connect_publishes_the_port_its_task_definition_names(name: str) -> None:
    (published,) = service(name)["serviceConnectConfiguration"]["services"]
    task_definition = rendered(next(p for p in TASK_DEFINITIONS if p.stem == name))
    container = task_definition["containerDefinitions"][0]
    assert published["portName"] in {mapping["name"] for mapping in container["portMappings"]}
    assert client_aliases(name) == {f"http://{name}:{PORTS[name]}"}


def test_the_gateway_and_users_reach_services_by_their_service_connect_names() -> None:
    gateway = environment("gateway")
    assert gateway["AUTH_UPSTREAMS"] in client_aliases("auth")
    assert gateway["USERS_UPSTREAMS"] in client_aliases("users")
    assert environment("users")["JWKS_URL"].startswith(f"{gateway['AUTH_UPSTREAMS']}/")
    assert client_aliases("gateway") == set(), "the gateway is a client only"
