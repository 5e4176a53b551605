"""deploy/release.py end to end against moto's ECS: register, migrate, roll out, wait."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from deploy_templates import example_settings
from moto import mock_aws

from deploy import release
from deploy.release import CONTAINERS, Release, ReleaseError, Timing
from deploy.render import load_settings

REGION = "eu-west-1"
CLUSTER = "auth-platform"
FAST = Timing(delay=0, migration_attempts=10, stable_attempts=3)
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
            for name in ("services", "gateway")
        }
        boto3.client("ecs", region_name=REGION).create_cluster(clusterName=CLUSTER)
        settings = example_settings()
        settings.update(
            PrivateSubnetIds=subnets,
            ServiceSecurityGroupId=groups["services"],
            GatewaySecurityGroupId=groups["gateway"],
        )
        yield settings


def ecs() -> Any:
    return boto3.client("ecs", region_name=REGION)


def service_task_definitions(client: Any) -> dict[str, str]:
    described = client.describe_services(cluster=CLUSTER, services=["auth", "users", "gateway"])
    return {service["serviceName"]: service["taskDefinition"] for service in described["services"]}


def test_first_release_registers_migrates_and_creates_every_service(aws: dict[str, Any]) -> None:
    client = ecs()
    said: list[str] = []
    arns = Release(aws, client, timing=FAST, say=said.append).run(CONTAINERS)

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
    assert said.index("auth-migrate: succeeded") < said.index(
        f"service auth: created with {arns['auth']}"
    )
    registered = client.describe_task_definition(taskDefinition="auth-platform-auth")[
        "taskDefinition"
    ]
    assert registered["containerDefinitions"][0]["image"].endswith("/auth-platform-auth:0.1.0")


def test_a_second_release_with_the_same_settings_registers_nothing(aws: dict[str, Any]) -> None:
    client = ecs()
    first = Release(aws, client, timing=FAST, say=lambda _: None).run(CONTAINERS)
    said: list[str] = []
    second = Release(aws, client, timing=FAST, say=said.append).run(CONTAINERS)

    assert second == first
    assert len(client.list_task_definitions()["taskDefinitionArns"]) == len(FAMILIES)
    assert [line for line in said if line.startswith("service ")] == [
        f"service {name}: updated to {first[name]}" for name in ("auth", "users", "gateway")
    ]


def test_a_new_image_tag_rolls_every_service_to_a_new_revision(aws: dict[str, Any]) -> None:
    client = ecs()
    Release(aws, client, timing=FAST, say=lambda _: None).run(CONTAINERS)
    second = Release({**aws, "ImageTag": "0.2.0"}, client, timing=FAST, say=lambda _: None).run(
        CONTAINERS
    )

    assert all(arn.endswith(":2") for arn in second.values())
    assert service_task_definitions(client) == second
    image = client.describe_task_definition(taskDefinition=second["users"])["taskDefinition"][
        "containerDefinitions"
    ][0]["image"]
    assert image.endswith("/auth-platform-users:0.2.0")


def test_one_container_is_released_on_its_own(aws: dict[str, Any]) -> None:
    client = ecs()
    users = next(container for container in CONTAINERS if container.name == "users")
    Release(aws, client, timing=FAST, say=lambda _: None).run([users])

    families = {
        arn.split("/")[-1].split(":")[0]
        for arn in client.list_task_definitions()["taskDefinitionArns"]
    }
    assert families == {"auth-platform-users", "auth-platform-users-migrate"}
    assert set(service_task_definitions(client)) == {"users"}


def test_a_failed_migration_stops_the_release_before_any_service_changes(
    aws: dict[str, Any],
) -> None:
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
        Release(aws, client, timing=FAST, say=lambda _: None).run(CONTAINERS)
    assert service_task_definitions(client) == {}
    assert client.list_tasks(cluster=CLUSTER)["taskArns"], "the job did run"


def test_a_migration_that_cannot_start_stops_the_release(aws: dict[str, Any]) -> None:
    client = ecs()

    def no_capacity(parsed: dict[str, Any], **_: Any) -> None:
        parsed["tasks"] = []
        parsed["failures"] = [{"reason": "Capacity is unavailable at this time."}]

    client.meta.events.register("after-call.ecs.RunTask", no_capacity)
    with pytest.raises(ReleaseError, match=r"auth-migrate: the task did not start.*Capacity"):
        Release(aws, client, timing=FAST, say=lambda _: None).run(CONTAINERS)
    assert service_task_definitions(client) == {}


def test_a_service_that_never_stabilises_fails_the_release(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "0")
    with pytest.raises(ReleaseError, match="did not become stable"):
        Release(aws, ecs(), timing=FAST, say=lambda _: None).run(CONTAINERS)


def test_migrate_only_runs_the_jobs_and_touches_no_service(aws: dict[str, Any]) -> None:
    client = ecs()
    arns = Release(aws, client, timing=FAST, say=lambda _: None).run(CONTAINERS, migrate_only=True)
    assert set(arns) == {"auth-migrate", "users-migrate"}
    assert service_task_definitions(client) == {}
    assert len(client.list_tasks(cluster=CLUSTER)["taskArns"]) == 2


def test_dry_run_prints_validated_calls_and_needs_no_aws(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        release.main(
            ["--settings", str(Path("deploy/settings.example.json").resolve()), "--dry-run"]
        )
        == 0
    )
    calls = [
        line.split(" ", 4)[3:]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("would call")
    ]
    operations = [operation for operation, _ in calls]
    assert operations == [
        *["RegisterTaskDefinition"] * 5,
        "RunTask",
        "RunTask",
        *["CreateService", "UpdateService"] * 3,
    ]
    register = json.loads(calls[0][1])
    assert register["family"] == "auth-platform-auth"


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
