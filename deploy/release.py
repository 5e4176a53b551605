"""Release the platform to ECS Fargate, one container or all of them.

    python -m deploy.release --settings deploy/settings.json [--stack auth-platform]
                             [--only auth] [--only users] [--only gateway]
                             [--migrate-only] [--dry-run]

1. render the task definitions and services in deploy/ecs/ from the settings (the stack's
   outputs, then the settings file, which wins);
2. register each task definition, unless the latest ACTIVE revision already says the same;
3. run each migration job (auth-migrate, users-migrate) as a one-off Fargate task and stop,
   before any service changes, unless every container exited 0;
4. create each service that does not exist yet, update the others to the new revision;
5. wait until every service touched is stable.

Idempotent: a second run with the same settings registers nothing new, reruns the
migrations (a no-op at head) and leaves the services where they are. `--dry-run` calls
nothing: it prints every call it would make, each validated against the ECS API model.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore.exceptions import ClientError, WaiterError  # type: ignore[import-untyped]
from botocore.validate import ParamValidator  # type: ignore[import-untyped]

from deploy.render import (
    SettingsError,
    check_settings,
    load_settings,
    load_template,
    render,
    stack_outputs,
)

DEPLOY_DIR = Path(__file__).resolve().parent
TASK_DEFINITIONS_DIR = DEPLOY_DIR / "ecs" / "task-definitions"
SERVICES_DIR = DEPLOY_DIR / "ecs" / "services"

# Filled by the script itself, never by the settings.
TASK_DEFINITION_ARN = "TaskDefinitionArn"
# Fields the service templates set at creation only: the desired count is the
# autoscaler's (or the operator's) once the service runs.
CREATE_ONLY_FIELDS = frozenset({"desiredCount", "serviceName", "tags"})


@dataclass(frozen=True)
class Container:
    """A long-running container and the one-shot migration job that must succeed before it."""

    name: str
    migration: str | None


# In rollout order: users fetch auth's key set, the gateway fronts both.
CONTAINERS = (
    Container("auth", "auth-migrate"),
    Container("users", "users-migrate"),
    Container("gateway", None),
)


class ReleaseError(Exception):
    """The release stopped; the message says where and why."""


@dataclass(frozen=True)
class Timing:
    """How long to wait: seconds between polls and the number of polls (botocore waiters)."""

    delay: int = 6
    migration_attempts: int = 150
    stable_attempts: int = 120


def contains(actual: Any, wanted: Any) -> bool:
    """True when everything wanted is in actual (AWS adds defaults and metadata of its own)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(wanted)
            and all(contains(a, w) for a, w in zip(actual, wanted, strict=True))
        )
    return bool(actual == wanted)


class Release:
    """One release: every call goes through `call`, which validates it and, unless dry, makes it."""

    def __init__(
        self,
        values: Mapping[str, Any],
        ecs: Any,
        *,
        timing: Timing | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        check_settings(values)
        self.values = dict(values)
        self.ecs: Any = ecs  # a boto3 ECS client; None for a dry run
        self.dry_run = ecs is None
        self.timing = timing or Timing()
        self.say = say
        self.model = botocore.session.get_session().get_service_model("ecs")
        self.cluster: str = values.get("ClusterName", "")
        if not self.cluster:
            raise SettingsError("setting ClusterName is missing")

    def call(self, operation: str, **params: Any) -> Any:
        """Validate params against the ECS model; print them in a dry run, else call ECS."""
        input_shape = self.model.operation_model(operation).input_shape
        report = ParamValidator().validate(params, input_shape)
        if report.has_errors():
            raise ReleaseError(f"{operation}: invalid parameters:\n{report.generate_report()}")
        if self.dry_run:
            self.say(f"would call ecs {operation} {json.dumps(params, sort_keys=True)}")
            return None
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        return getattr(self.ecs, method)(**params)

    def task_definition(self, name: str) -> dict[str, Any]:
        rendered: dict[str, Any] = render(
            load_template(TASK_DEFINITIONS_DIR / f"{name}.json"), self.values
        )
        return rendered

    def service_definition(self, name: str, task_definition_arn: str) -> dict[str, Any]:
        values = {**self.values, TASK_DEFINITION_ARN: task_definition_arn}
        rendered: dict[str, Any] = render(load_template(SERVICES_DIR / f"{name}.json"), values)
        return rendered

    def run(self, containers: Sequence[Container], *, migrate_only: bool = False) -> dict[str, str]:
        """The whole release; returns the task definition ARN of each container released.

        With `migrate_only`, the migration jobs only (App Runner, Express Mode and Lambda
        deployments run their migrations this way, on the stack's cluster).
        """
        # Everything is rendered (and so checked) before the first call.
        names = [
            name
            for container in containers
            for name in (
                (container.migration,) if migrate_only else (container.name, container.migration)
            )
            if name
        ]
        definitions = {name: self.task_definition(name) for name in names}
        for container in containers:
            self.service_definition(container.name, "check")

        arns = {name: self.register(definition) for name, definition in definitions.items()}
        for container in containers:
            if container.migration:
                self.migrate(container, arns[container.migration])
        if migrate_only:
            return arns
        for container in containers:
            self.roll_out(container.name, arns[container.name])
        self.wait_until_stable([container.name for container in containers])
        return {container.name: arns[container.name] for container in containers}

    def register(self, definition: dict[str, Any]) -> str:
        family = definition["family"]
        if self.dry_run:
            self.call("RegisterTaskDefinition", **definition)
            return f"{family}:<next revision>"
        try:
            current = self.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
        except ClientError as error:
            if error.response["Error"]["Code"] not in (
                "ClientException",
                "InvalidParameterException",
            ):
                raise
            current = None
        if (
            current is not None
            and current.get("status") == "ACTIVE"
            and contains(current, definition)
        ):
            arn: str = current["taskDefinitionArn"]
            self.say(f"task definition {family}: unchanged, {arn}")
            return arn
        arn = self.call("RegisterTaskDefinition", **definition)["taskDefinition"][
            "taskDefinitionArn"
        ]
        self.say(f"task definition {family}: registered {arn}")
        return arn

    def migrate(self, container: Container, task_definition_arn: str) -> None:
        """Run the migration job once; raise unless every container in it exited 0."""
        service = self.service_definition(container.name, task_definition_arn)
        response = self.call(
            "RunTask",
            cluster=self.cluster,
            taskDefinition=task_definition_arn,
            count=1,
            launchType="FARGATE",
            platformVersion=service["platformVersion"],
            networkConfiguration=service["networkConfiguration"],
            startedBy="release",
            group=f"release:{container.migration}",
            propagateTags="TASK_DEFINITION",
        )
        if self.dry_run:
            self.say(f"would wait for {container.migration} to stop and check its exit code")
            return
        if response.get("failures") or not response.get("tasks"):
            raise ReleaseError(
                f"{container.migration}: the task did not start: {response.get('failures')}"
            )
        task_arn = response["tasks"][0]["taskArn"]
        self.say(f"{container.migration}: started {task_arn}")
        try:
            self.ecs.get_waiter("tasks_stopped").wait(
                cluster=self.cluster,
                tasks=[task_arn],
                WaiterConfig={
                    "Delay": self.timing.delay,
                    "MaxAttempts": self.timing.migration_attempts,
                },
            )
        except WaiterError as error:
            raise ReleaseError(f"{container.migration}: did not stop in time: {error}") from error
        task = self.ecs.describe_tasks(cluster=self.cluster, tasks=[task_arn])["tasks"][0]
        exit_codes = {item["name"]: item.get("exitCode") for item in task.get("containers", [])}
        if not exit_codes or any(code != 0 for code in exit_codes.values()):
            raise ReleaseError(
                f"{container.migration}: failed (exit codes {exit_codes}, "
                f"stop code {task.get('stopCode')}, reason {task.get('stoppedReason')!r}); "
                "no service was changed. Its log is in the service's log group, "
                "stream prefix 'migrate'."
            )
        self.say(f"{container.migration}: succeeded")

    def roll_out(self, name: str, task_definition_arn: str) -> None:
        """Create the service if it is not there, else point it at the new revision."""
        definition = self.service_definition(name, task_definition_arn)
        if self.dry_run:
            self.say(f"would create service {name} if missing, else update it:")
            self.call("CreateService", **definition)
            self.call("UpdateService", **self.update_parameters(definition))
            return
        described = self.ecs.describe_services(cluster=self.cluster, services=[name])
        if any(service["status"] == "ACTIVE" for service in described["services"]):
            self.call("UpdateService", **self.update_parameters(definition))
            self.say(f"service {name}: updated to {task_definition_arn}")
        else:
            self.call("CreateService", **definition)
            self.say(f"service {name}: created with {task_definition_arn}")

    def update_parameters(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        """The service template as an UpdateService call: every field UpdateService takes."""
        members = self.model.operation_model("UpdateService").input_shape.members
        parameters = {
            key: value
            for key, value in definition.items()
            if key in members and key not in CREATE_ONLY_FIELDS
        }
        parameters["service"] = definition["serviceName"]
        return parameters

    def wait_until_stable(self, names: Sequence[str]) -> None:
        if self.dry_run:
            self.say(f"would wait until services {', '.join(names)} are stable")
            return
        self.say(f"waiting until services {', '.join(names)} are stable")
        try:
            self.ecs.get_waiter("services_stable").wait(
                cluster=self.cluster,
                services=list(names),
                WaiterConfig={
                    "Delay": self.timing.delay,
                    "MaxAttempts": self.timing.stable_attempts,
                },
            )
        except WaiterError as error:
            raise ReleaseError(
                f"services {', '.join(names)} did not become stable: {error}. The deployment "
                "circuit breaker rolls a failing service back; see `aws ecs describe-services`."
            ) from error
        self.say("stable")


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.release", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--settings", type=Path, help="JSON settings (deploy/settings.example.json)"
    )
    parser.add_argument("--stack", help="CloudFormation stack whose outputs fill the settings")
    parser.add_argument(
        "--only",
        action="append",
        choices=[container.name for container in CONTAINERS],
        help="release this container only (repeatable); default: all, in order",
    )
    parser.add_argument("--region", help="AWS region (default: the settings' Region)")
    parser.add_argument(
        "--migrate-only", action="store_true", help="run the migration jobs, touch no service"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the calls, make none")
    arguments = parser.parse_args(argv)
    if arguments.settings is None and arguments.stack is None:
        parser.error("give --settings, --stack or both")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 released, 1 release failed, 2 bad settings)."""
    arguments = parse_arguments(argv)
    try:
        file_values = load_settings(arguments.settings, {})
        region = arguments.region or file_values.get("Region")
        session = boto3.session.Session(region_name=region)
        outputs = (
            stack_outputs(session.client("cloudformation"), arguments.stack)
            if arguments.stack
            else {}
        )
        values = load_settings(arguments.settings, outputs)
        ecs = None if arguments.dry_run else session.client("ecs")
        selected = [c for c in CONTAINERS if not arguments.only or c.name in arguments.only]
        Release(values, ecs).run(selected, migrate_only=arguments.migrate_only)
    except SettingsError as error:
        print(f"release: bad settings: {error}", file=sys.stderr)
        return 2
    except (ReleaseError, ClientError) as error:
        print(f"release: failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
