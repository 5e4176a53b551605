"""deploy/ecs/task-definitions: valid RegisterTaskDefinition calls following the project's rules."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from deploy.render import SettingsError, check_settings, load_template
from testsupport import ROOT
from testsupport.deploy_templates import TASK_DEFINITIONS, rendered, validation_errors

# Fargate's valid task sizes: cpu units -> memory MiB (AWS ECS developer guide, task size).
FARGATE_MEMORY = {
    "256": {512, 1024, 2048},
    "512": set(range(1024, 4096 + 1, 1024)),
    "1024": set(range(2048, 8192 + 1, 1024)),
    "2048": set(range(4096, 16384 + 1, 1024)),
    "4096": set(range(8192, 30720 + 1, 1024)),
    "8192": set(range(16384, 61440 + 1, 4096)),
    "16384": set(range(32768, 122880 + 1, 8192)),
}
SECRET_LOOKING = re.compile(
    r"PASSWORD|PASSWD|SECRET|PRIVATE|CREDENTIAL|(^|_)KEY($|_)|DATABASE_URL|DSN|(^|_)TOKEN$",
)
ARN = re.compile(r"arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:\S+")
LONG_RUNNING = ("auth", "users", "gateway")
MIGRATIONS = ("auth-migrate", "users-migrate")


def by_name(name: str) -> Path:
    return next(path for path in TASK_DEFINITIONS if path.stem == name)


def container(task_definition: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = task_definition["containerDefinitions"]
    assert len(containers) == 1, "one container per task: each deploys on its own"
    return containers[0]


def test_there_is_a_task_definition_per_container_and_migration_job() -> None:
    assert {path.stem for path in TASK_DEFINITIONS} == {*LONG_RUNNING, *MIGRATIONS}


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda path: path.stem)
def test_task_definition_is_a_valid_register_task_definition_call(path: Path) -> None:
    assert validation_errors("ecs", "RegisterTaskDefinition", rendered(path)) == ""


def test_the_validator_rejects_a_broken_task_definition() -> None:
    broken = rendered(by_name("auth"))
    broken["containerDefinitions"][0]["portMappings"][0]["containerPort"] = "8001"
    broken["containerDefinitions"][0]["readOnlyRootFilesystem"] = True  # misspelt
    errors = validation_errors("ecs", "RegisterTaskDefinition", broken)
    assert "containerPort" in errors
    assert 'Unknown parameter in containerDefinitions[0]: "readOnlyRootFilesystem"' in errors


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda path: path.stem)
def test_task_runs_on_fargate_with_a_valid_size(path: Path) -> None:
    task = rendered(path)
    assert task["networkMode"] == "awsvpc"
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert int(task["memory"]) in FARGATE_MEMORY[task["cpu"]]
    # The container's hard limit is the task's: one container, nothing to share with.
    assert container(task)["memory"] == int(task["memory"])


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda path: path.stem)
def test_container_logs_to_cloudwatch_with_awslogs(path: Path) -> None:
    task = rendered(path)
    logging = container(task)["logConfiguration"]
    assert logging["logDriver"] == "awslogs"
    assert {"awslogs-group", "awslogs-region", "awslogs-stream-prefix"} <= set(logging["options"])


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_container_has_a_health_check_that_needs_no_curl(name: str) -> None:
    definition = container(rendered(by_name(name)))
    command = definition["healthCheck"]["command"]
    assert command[0] == "CMD", "exec form: no shell needed in the image"
    assert command[-1] == "healthcheck"
    assert not {"curl", "wget"} & {Path(part).name for part in command}


@pytest.mark.parametrize("name", MIGRATIONS)
def test_migration_job_is_one_shot_and_runs_migrate(name: str) -> None:
    definition = container(rendered(by_name(name)))
    assert definition["command"] == ["migrate"]
    assert "healthCheck" not in definition
    assert "portMappings" not in definition
    service = container(rendered(by_name(name.removesuffix("-migrate"))))
    assert definition["image"] == service["image"], "a migration runs the image it migrates for"
    assert definition["entryPoint"] == service["entryPoint"]


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda path: path.stem)
def test_container_is_non_root_read_only_and_drops_every_capability(path: Path) -> None:
    definition = container(rendered(path))
    user = definition["user"]
    assert user.split(":")[0] not in ("", "0", "root")
    assert definition["readonlyRootFilesystem"] is True
    assert definition["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    assert "privileged" not in definition


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda path: path.stem)
def test_no_secret_looking_name_is_in_plain_environment(path: Path) -> None:
    for variable in container(rendered(path)).get("environment", []):
        assert not SECRET_LOOKING.search(variable["name"]), variable["name"]
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", variable["value"]), "credentials in a URL"


@pytest.mark.parametrize("name", ["auth", "auth-migrate", "users", "users-migrate"])
def test_secrets_come_from_secrets_manager_or_ssm_by_arn(name: str) -> None:
    secrets = {
        item["name"]: item["valueFrom"] for item in container(rendered(by_name(name)))["secrets"]
    }
    expected = (
        {"DATABASE_URL", "KEY_ENCRYPTION_KEY"} if name.startswith("auth") else {"DATABASE_URL"}
    )
    assert set(secrets) == expected
    assert all(ARN.fullmatch(arn) for arn in secrets.values())


def test_users_never_receive_the_key_encryption_key() -> None:
    for name in ("users", "users-migrate", "gateway"):
        definition = container(rendered(by_name(name)))
        names = {item["name"] for item in definition.get("secrets", [])}
        assert "KEY_ENCRYPTION_KEY" not in names


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda path: path.stem)
def test_image_is_named_by_an_immutable_tag(path: Path) -> None:
    template = container(load_template(path))
    assert template["image"].endswith(":${ImageTag}"), "the tag comes from the release settings"
    image = container(rendered(path))["image"]
    repository, tag = image.rsplit(":", 1)
    assert repository.rsplit("/", 1)[1] in {
        "auth-platform-auth",
        "auth-platform-users",
        "auth-platform-gateway",
    }
    assert tag
    assert tag != "latest"


@pytest.mark.parametrize("tag", ["latest", "LATEST", "", "has space", None])
def test_settings_refuse_a_mutable_or_missing_image_tag(tag: str | None) -> None:
    values = {"ImageTag": tag}
    with pytest.raises(SettingsError, match="ImageTag"):
        check_settings(values, {"ImageTag"})


@pytest.mark.parametrize(
    "value", ["postgresql://app:hunter2@db/auth", "arn:aws:iam::123456789012:role/x", ""]
)
def test_settings_refuse_a_secret_that_is_not_a_secret_arn(value: str) -> None:
    with pytest.raises(SettingsError, match="AuthDatabaseUrlSecretArn"):
        check_settings({"AuthDatabaseUrlSecretArn": value})


@pytest.mark.parametrize("name", ["auth", "users"])
def test_service_listens_on_its_contract_port_on_every_interface(name: str) -> None:
    port = {"auth": 8001, "users": 8002}[name]
    definition = container(rendered(by_name(name)))
    environment = {item["name"]: item["value"] for item in definition["environment"]}
    assert environment[f"{name.upper()}_HOST"] == "0.0.0.0"  # noqa: S104 - inside the task's ENI
    assert environment[f"{name.upper()}_PORT"] == str(port)
    assert environment["ENVIRONMENT"] == "production"
    assert definition["portMappings"] == [
        {"name": name, "containerPort": port, "protocol": "tcp", "appProtocol": "http"}
    ]
    assert definition["entryPoint"] == [f"{name}-service"]
    assert definition["command"] == ["serve"]


def test_users_fetch_the_key_set_from_auth_over_service_connect() -> None:
    environment = {
        item["name"]: item["value"] for item in container(rendered(by_name("users")))["environment"]
    }
    assert environment["JWKS_URL"] == "http://auth:8001/.well-known/jwks.json"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_entry_point_and_user_match_the_image(name: str) -> None:
    recipe = "gateway/Dockerfile" if name == "gateway" else "libs/service-kit/Dockerfile"
    text = (ROOT / recipe).read_text()
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)[-1]
    entry_point = json.loads(re.findall(r"^ENTRYPOINT (\[.*\])", text, re.MULTILINE)[-1])
    if name != "gateway":
        # A service's image (built with SERVICE=<name>) runs `service`, a link to the
        # `<name>-service` command, which the task definition names.
        assert entry_point == ["service"]
        assert 'ln -s "${SERVICE}-service" /app/.venv/bin/service' in text
        entry_point = [f"{name}-service"]
    definition = container(rendered(by_name(name)))
    assert definition["user"] == user
    assert definition["entryPoint"] == entry_point
