"""deploy/cloudformation/platform.yaml: lint-clean, least privilege, outputs fill the settings."""

from functools import cache
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint, lint_file  # type: ignore[import-untyped]
from cfnlint.decode import decode_str  # type: ignore[import-untyped]

from deploy.render import load_template, placeholders
from testsupport.deploy_templates import DEPLOY, TASK_DEFINITIONS, example_settings

TEMPLATE = DEPLOY / "cloudformation" / "platform.yaml"
# The settings an operator writes; every other one the ECS templates use is a stack output.
OPERATOR_SETTINGS = {"ImageTag", "AccessTokenAudience", "LogLevel"}
LINT_REGIONS = ManualArgs(regions=["us-east-1", "eu-west-1"])


@cache
def template() -> dict[str, Any]:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors
    result: dict[str, Any] = decoded
    return result


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template()["Resources"].items() if body["Type"] == kind}


def test_cfn_lint_finds_nothing() -> None:
    matches = lint_file(TEMPLATE, LINT_REGIONS)
    assert [str(match) for match in matches] == []


def test_cfn_lint_does_find_a_broken_template() -> None:
    broken = TEMPLATE.read_text().replace("TargetType: ip", "TargetType: pod", 1)
    assert any("pod" in str(match) for match in lint(broken, config=LINT_REGIONS))


def test_its_outputs_and_the_operator_fill_every_ecs_setting() -> None:
    used = set().union(*(placeholders(load_template(path)) for path in TASK_DEFINITIONS))
    outputs = set(template()["Outputs"])
    assert used - outputs == OPERATOR_SETTINGS
    assert outputs - {"LoadBalancerDnsName"} <= set(example_settings())


def test_the_load_balancer_forwards_everything_to_the_gateway_and_routes_nothing() -> None:
    assert resources("AWS::ElasticLoadBalancingV2::ListenerRule") == {}
    (target_group,) = resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert target_group["Properties"]["Port"] == 8000
    assert target_group["Properties"]["TargetType"] == "ip"
    # The gateway's own answer (its 404 for an unrouted path), not one service's health.
    assert target_group["Properties"]["HealthCheckPath"] == "/"
    assert target_group["Properties"]["HealthCheckPort"] == "traffic-port"
    assert target_group["Properties"]["Matcher"]["HttpCode"] == "200-499"


def policy_statements(role: str) -> list[dict[str, Any]]:
    properties = template()["Resources"][role]["Properties"]
    return [
        statement
        for policy in properties.get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if isinstance(statement, dict) and "Effect" in statement
    ]


@pytest.mark.parametrize(
    ("role", "secrets"),
    [
        ("AuthExecutionRole", {"AuthDatabaseUrlSecretArn", "KeyEncryptionKeySecretArn"}),
        ("UsersExecutionRole", {"UsersDatabaseUrlSecretArn"}),
        ("GatewayExecutionRole", set()),
    ],
)
def test_each_execution_role_reads_only_its_own_secrets(role: str, secrets: set[str]) -> None:
    readable = {
        resource["Ref"]
        for statement in policy_statements(role)
        if "secretsmanager:GetSecretValue" in statement["Action"]
        for resource in statement["Resource"]
    }
    assert readable == secrets
    for statement in policy_statements(role):
        wildcard = statement["Resource"] == "*"
        assert not wildcard or statement["Action"] == "ecr:GetAuthorizationToken", statement


@pytest.mark.parametrize("role", ["AuthTaskRole", "UsersTaskRole", "GatewayTaskRole"])
def test_task_roles_grant_nothing(role: str) -> None:
    properties = template()["Resources"][role]["Properties"]
    assert "Policies" not in properties
    assert "ManagedPolicyArns" not in properties


def test_only_the_load_balancer_is_open_to_the_internet() -> None:
    for name, group in resources("AWS::EC2::SecurityGroup").items():
        open_rules = [
            rule
            for rule in group["Properties"].get("SecurityGroupIngress", [])
            if rule.get("CidrIp") == "0.0.0.0/0"
        ]
        assert not open_rules or name == "LoadBalancerSecurityGroup"


def test_image_repositories_refuse_to_overwrite_a_tag() -> None:
    repositories = resources("AWS::ECR::Repository")
    assert {body["Properties"]["RepositoryName"] for body in repositories.values()} == {
        "auth-platform-auth",
        "auth-platform-users",
        "auth-platform-gateway",
    }
    assert all(
        body["Properties"]["ImageTagMutability"] == "IMMUTABLE" for body in repositories.values()
    )


def test_log_groups_are_the_ones_the_task_definitions_write_to() -> None:
    names = {
        body["Properties"]["LogGroupName"] for body in resources("AWS::Logs::LogGroup").values()
    }
    settings = example_settings()
    assert names == {
        settings["AuthLogGroup"],
        settings["UsersLogGroup"],
        settings["GatewayLogGroup"],
    }


def test_the_rate_limit_cache_is_serverless_private_and_reachable_from_the_gateway_only() -> None:
    (cache,) = resources("AWS::ElastiCache::ServerlessCache").values()
    properties = cache["Properties"]
    assert properties["Engine"] in ("valkey", "redis")
    assert properties["SubnetIds"] == {"Ref": "PrivateSubnetIds"}
    (group_ref,) = properties["SecurityGroupIds"]
    group = template()["Resources"][group_ref["Ref"]]["Properties"]
    assert [
        (rule["FromPort"], rule["ToPort"], rule["SourceSecurityGroupId"])
        for rule in group["SecurityGroupIngress"]
    ] == [(6379, 6379, {"Ref": "GatewaySecurityGroup"})]
    extra_ingress = [
        body
        for body in resources("AWS::EC2::SecurityGroupIngress").values()
        if body["Properties"]["GroupId"] == group_ref
    ]
    assert extra_ingress == []


def test_the_gateway_tasks_count_rate_limits_in_the_cache_over_tls() -> None:
    output = template()["Outputs"]["GatewayRedisUrl"]["Value"]
    assert output == {
        "Fn::Sub": "rediss://${RateLimitCache.Endpoint.Address}:${RateLimitCache.Endpoint.Port}"
    }
    gateway = next(path for path in TASK_DEFINITIONS if path.stem == "gateway")
    (container,) = load_template(gateway)["containerDefinitions"]
    environment = {item["name"]: item["value"] for item in container["environment"]}
    assert environment["GATEWAY_REDIS_URL"] == "${GatewayRedisUrl}"
