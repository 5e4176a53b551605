"""deploy/release.py end to end: register, migrate, update the stack, wait.

ECS is moto's. CloudFormation is botocore's Stubber: moto's CloudFormation needs extras this
project does not install (moto[cloudformation]), and moto would ignore most of an
AWS::ECS::Service's properties anyway. The Stubber checks every request and every answer
against the real CloudFormation model; `Stack` applies an update to moto's ECS the way the
template's services do (a service exists once its task definition ARN is set, and runs it).
The template itself is checked by cfn-lint and tests/deploy/test_ecs_services.py.
"""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber  # type: ignore[import-untyped]
from moto import mock_aws

from deploy import release
from deploy.release import CONTAINERS, Release, ReleaseError, Timing
from deploy.render import load_settings
from testsupport.deploy_templates import example_settings

REGION = "eu-west-1"
CLUSTER = "auth-platform"
STACK = "auth-platform"
FAST = Timing(delay=0, migration_attempts=10, stable_attempts=3, stack_delay=0, stack_attempts=3)
ARN_PARAMETERS = {container.name: container.stack_parameter for container in CONTAINERS}
FAMILIES = {
    "auth-platform-auth",
    "auth-platform-auth-migrate",
    "auth-platform-users",
    "auth-platform-users-migrate",
    "auth-platform-gateway",
}


@pytest.fixture
def aws(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A mocked account with the network and cluster the stack would create; its settings."""
    # moto's documented knobs: this many running tasks per service; no AMI catalogue (slow).
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24")["Subnet"]["SubnetId"]
            for n in (1, 2)
        ]
        groups = {
            name: ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
            for name in ("services",)
        }
        boto3.client("ecs", region_name=REGION).create_cluster(clusterName=CLUSTER)
        settings = example_settings()
        settings.update(
            PrivateSubnetIds=subnets,
            ServiceSecurityGroupId=groups["services"],
        )
        yield settings


def ecs() -> Any:
    return boto3.client("ecs", region_name=REGION)


class Stack:
    """The platform stack: a stubbed CloudFormation client whose updates act on moto's ECS."""

    def __init__(self) -> None:
        self.client = boto3.client("cloudformation", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        # As after the first `aws cloudformation deploy`: no task definition ARN yet.
        self.parameters = {
            "VpcId": "vpc-0a1b2c3d",
            "LogRetentionInDays": "30",
            **dict.fromkeys(ARN_PARAMETERS.values(), ""),
        }
        self.updates: list[dict[str, Any]] = []
        self.client.meta.events.register(
            "before-parameter-build.cloudformation.UpdateStack", self.record
        )

    def description(self, status: str) -> dict[str, Any]:
        return {
            "StackName": STACK,
            "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
            "StackStatus": status,
            "Parameters": [
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in self.parameters.items()
            ],
        }

    def expect(self, outcome: str) -> None:
        """Queue one release's calls: 'updated', 'unchanged', 'rolled back' or 'dry run'."""
        self.stubber.add_response(
            "describe_stacks",
            {"Stacks": [self.description("UPDATE_COMPLETE")]},
            {"StackName": STACK},
        )
        if outcome == "dry run":
            return
        if outcome == "unchanged":
            self.stubber.add_client_error(
                "update_stack", "ValidationError", "No updates are to be performed.", 400
            )
            return
        self.stubber.add_response("update_stack", {"StackId": f"arn:aws:cloudformation:{STACK}"})
        final = "UPDATE_COMPLETE" if outcome == "updated" else "UPDATE_ROLLBACK_COMPLETE"
        self.stubber.add_response("describe_stacks", {"Stacks": [self.description(final)]})

    def record(self, params: dict[str, Any], **_: Any) -> None:
        """What the template's services do with an update's parameters, on moto's ECS."""
        self.updates.append(params)
        for item in params["Parameters"]:
            if not item.get("UsePreviousValue"):
                self.parameters[item["ParameterKey"]] = item["ParameterValue"]
        client = ecs()
        for name, parameter in ARN_PARAMETERS.items():
            arn = self.parameters[parameter]
            if not arn:
                continue
            described = client.describe_services(cluster=CLUSTER, services=[name])["services"]
            if any(service["status"] == "ACTIVE" for service in described):
                client.update_service(cluster=CLUSTER, service=name, taskDefinition=arn)
            else:
                client.create_service(
                    cluster=CLUSTER,
                    serviceName=name,
                    taskDefinition=arn,
                    desiredCount=2,
                    launchType="FARGATE",
                )


@pytest.fixture
def stack(aws: dict[str, Any]) -> Iterator[Stack]:
    fake = Stack()
    yield fake
    fake.stubber.assert_no_pending_responses()


def released(
    settings: dict[str, Any], stack: Stack, outcome: str = "updated", **kwargs: Any
) -> Any:
    """A Release on moto's ECS and the stack, which expects `outcome`."""
    stack.expect(outcome)
    kwargs.setdefault("say", lambda _: None)
    return Release(settings, ecs(), cloudformation=stack.client, stack=STACK, timing=FAST, **kwargs)


def service_task_definitions(client: Any) -> dict[str, str]:
    described = client.describe_services(cluster=CLUSTER, services=["auth", "users", "gateway"])
    return {service["serviceName"]: service["taskDefinition"] for service in described["services"]}


def test_first_release_registers_migrates_and_creates_every_service(
    aws: dict[str, Any], stack: Stack
) -> None:
    client = ecs()
    said: list[str] = []
    arns = released(aws, stack, say=said.append).run(CONTAINERS)

    families = {
        arn.split("/")[-1].split(":")[0]
        for arn in client.list_task_definitions()["taskDefinitionArns"]
    }
    assert families == FAMILIES
    assert service_task_definitions(client) == arns
    migrations = client.describe_tasks(
        cluster=CLUSTER, tasks=client.list_tasks(cluster=CLUSTER)["taskArns"]
    )["tasks"]
    assert sorted(task["group"] for task in migrations) == [
        "release:auth-migrate",
        "release:users-migrate",
    ]
    assert all(task["lastStatus"] == "STOPPED" for task in migrations)
    assert said.index("users-migrate: succeeded") < said.index(f"stack {STACK}: updated")
    (update,) = stack.updates
    assert update["UsePreviousTemplate"] is True
    assert update["Capabilities"] == ["CAPABILITY_IAM"]
    assert update["Parameters"] == [
        {"ParameterKey": "VpcId", "UsePreviousValue": True},
        {"ParameterKey": "LogRetentionInDays", "UsePreviousValue": True},
        *(
            {"ParameterKey": ARN_PARAMETERS[name], "ParameterValue": arns[name]}
            for name in ("auth", "users", "gateway")
        ),
    ]
    registered = client.describe_task_definition(taskDefinition="auth-platform-auth")[
        "taskDefinition"
    ]
    assert registered["containerDefinitions"][0]["image"].endswith("/auth-platform-auth:0.1.0")


def test_a_second_release_with_the_same_settings_changes_nothing(
    aws: dict[str, Any], stack: Stack
) -> None:
    client = ecs()
    first = released(aws, stack).run(CONTAINERS)
    said: list[str] = []
    second = released(aws, stack, "unchanged", say=said.append).run(CONTAINERS)

    assert second == first
    assert len(client.list_task_definitions()["taskDefinitionArns"]) == len(FAMILIES)
    assert f"stack {STACK}: unchanged, the services already run these revisions" in said
    assert said[-1] == "stable"
    assert service_task_definitions(client) == first


def test_a_new_image_tag_rolls_every_service_to_a_new_revision(
    aws: dict[str, Any], stack: Stack
) -> None:
    client = ecs()
    released(aws, stack).run(CONTAINERS)
    second = released({**aws, "ImageTag": "0.2.0"}, stack).run(CONTAINERS)

    assert all(arn.endswith(":2") for arn in second.values())
    assert service_task_definitions(client) == second
    image = client.describe_task_definition(taskDefinition=second["users"])["taskDefinition"][
        "containerDefinitions"
    ][0]["image"]
    assert image.endswith("/auth-platform-users:0.2.0")


def test_one_container_is_released_on_its_own(aws: dict[str, Any], stack: Stack) -> None:
    client = ecs()
    users = next(container for container in CONTAINERS if container.name == "users")
    arns = released(aws, stack).run([users])

    families = {
        arn.split("/")[-1].split(":")[0]
        for arn in client.list_task_definitions()["taskDefinitionArns"]
    }
    assert families == {"auth-platform-users", "auth-platform-users-migrate"}
    assert set(service_task_definitions(client)) == {"users"}
    (update,) = stack.updates
    assert [item for item in update["Parameters"] if not item.get("UsePreviousValue")] == [
        {"ParameterKey": "UsersTaskDefinitionArn", "ParameterValue": arns["users"]}
    ]


def test_a_failed_migration_stops_the_release_before_any_service_changes(
    aws: dict[str, Any],
) -> None:
    """No stack: the release must stop before it would touch one (the Stubber expects nothing)."""
    stack = Stack()
    client = ecs()

    def migration_exits_1(parsed: dict[str, Any], **_: Any) -> None:
        # What ECS reports for a container that exited 1: the only thing moto cannot fake.
        for task in parsed.get("tasks", []):
            for container in task.get("containers", []):
                container["exitCode"] = 1
            task["stoppedReason"] = "Essential container in task exited"

    client.meta.events.register("after-call.ecs.DescribeTasks", migration_exits_1)
    with pytest.raises(
        ReleaseError, match=r"auth-migrate: failed \(exit codes \{'auth-migrate': 1\}"
    ):
        Release(
            aws, client, cloudformation=stack.client, stack=STACK, timing=FAST, say=lambda _: None
        ).run(CONTAINERS)
    assert service_task_definitions(client) == {}
    assert stack.updates == []
    assert client.list_tasks(cluster=CLUSTER)["taskArns"], "the job did run"


def test_a_migration_that_cannot_start_stops_the_release(aws: dict[str, Any]) -> None:
    client = ecs()
    stack = Stack()

    def no_capacity(parsed: dict[str, Any], **_: Any) -> None:
        parsed["tasks"] = []
        parsed["failures"] = [{"reason": "Capacity is unavailable at this time."}]

    client.meta.events.register("after-call.ecs.RunTask", no_capacity)
    with pytest.raises(ReleaseError, match=r"auth-migrate: the task did not start.*Capacity"):
        Release(
            aws, client, cloudformation=stack.client, stack=STACK, timing=FAST, say=lambda _: None
        ).run(CONTAINERS)
    assert service_task_definitions(client) == {}
    assert stack.updates == []


def test_a_stack_update_that_rolls_back_fails_the_release(
    aws: dict[str, Any], stack: Stack
) -> None:
    with pytest.raises(ReleaseError, match=f"stack {STACK}: the update failed.*rolls"):
        released(aws, stack, "rolled back").run(CONTAINERS)


def test_a_service_that_never_stabilises_fails_the_release(
    aws: dict[str, Any], stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    with pytest.raises(ReleaseError, match="did not become stable"):
        released(aws, stack).run(CONTAINERS)


def test_migrate_only_runs_the_jobs_and_touches_no_service(aws: dict[str, Any]) -> None:
    client = ecs()
    arns = Release(aws, client, timing=FAST, say=lambda _: None).run(CONTAINERS, migrate_only=True)
    assert set(arns) == {"auth-migrate", "users-migrate"}
    assert service_task_definitions(client) == {}
    assert len(client.list_tasks(cluster=CLUSTER)["taskArns"]) == 2


def test_dry_run_prints_validated_calls_and_changes_nothing(
    aws: dict[str, Any], stack: Stack
) -> None:
    said: list[str] = []
    stack.expect("dry run")
    Release(aws, None, cloudformation=stack.client, stack=STACK, say=said.append).run(CONTAINERS)

    calls = [line.split(" ", 4)[2:] for line in said if line.startswith("would call")]
    assert [(service, operation) for service, operation, _ in calls] == [
        *[("ecs", "RegisterTaskDefinition")] * 5,
        ("ecs", "RunTask"),
        ("ecs", "RunTask"),
        ("cloudformation", "UpdateStack"),
    ]
    assert json.loads(calls[0][2])["family"] == "auth-platform-auth"
    update = json.loads(calls[-1][2])
    assert update["StackName"] == STACK
    assert {"ParameterKey": "VpcId", "UsePreviousValue": True} in update["Parameters"]
    assert stack.updates == []
    assert ecs().list_task_definitions()["taskDefinitionArns"] == []
    assert ecs().list_tasks(cluster=CLUSTER)["taskArns"] == []


def test_dry_run_of_the_migrations_needs_no_aws(capsys: pytest.CaptureFixture[str]) -> None:
    settings = str(Path("deploy/settings.example.json").resolve())
    assert release.main(["--settings", settings, "--dry-run", "--migrate-only"]) == 0
    operations = [
        line.split(" ")[3]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("would call")
    ]
    assert operations == ["RegisterTaskDefinition", "RegisterTaskDefinition", "RunTask", "RunTask"]


def test_the_services_need_the_stack(capsys: pytest.CaptureFixture[str]) -> None:
    settings = str(Path("deploy/settings.example.json").resolve())
    assert release.main(["--settings", settings, "--dry-run"]) == 2
    assert "the services belong to the CloudFormation stack: give --stack" in (
        capsys.readouterr().err
    )


def test_stack_outputs_fill_the_settings_and_the_file_wins(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"ImageTag": "0.3.0", "LogLevel": "DEBUG"}))
    outputs = {"PrivateSubnetIds": "subnet-1,subnet-2", "LogLevel": "INFO", "ClusterName": "c"}
    assert load_settings(settings_file, outputs) == {
        "PrivateSubnetIds": ["subnet-1", "subnet-2"],
        "ClusterName": "c",
        "LogLevel": "DEBUG",
        "ImageTag": "0.3.0",
    }


def test_main_refuses_latest_before_calling_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({**example_settings(), "ImageTag": "latest"}))
    assert release.main(["--settings", str(settings_file)]) == 2
    assert "ImageTag must be an immutable image tag" in capsys.readouterr().err
