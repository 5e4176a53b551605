"""Release the platform to ECS Fargate, one container or all of them.

    python -m deploy.release --stack auth-platform [--settings deploy/settings.json]
                             [--only auth] [--only users] [--only gateway]
                             [--migrate-only] [--dry-run]

1. render the task definitions in deploy/ecs/task-definitions/ from the settings (the
   stack's outputs, then the settings file, which wins);
2. register each task definition, unless the latest ACTIVE revision already says the same;
3. run each migration job (auth-migrate, users-migrate) as a one-off Fargate task and stop,
   before any service changes, unless every container exited 0;
4. update the CloudFormation stack, which owns the services, with the new task definition
   ARNs (every other parameter keeps its value): the stack creates a service the first time
   its ARN is set and rolls it to the new revision afterwards; wait until the update is done;
5. wait until every service released is stable.

Idempotent: a second run with the same settings registers nothing new, reruns the
migrations (a no-op at head) and leaves the stack as it is ("No updates are to be
performed" is success). `--dry-run` changes nothing: it prints every call it would make,
each validated against the ECS or CloudFormation API model (it reads the stack).
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
# Fargate platform of the migration jobs: the services' (in the stack's template).
PLATFORM_VERSION = "1.4.0"
# CloudFormation's answer to an update that changes nothing: success for a release.
NO_UPDATES = "No updates are to be performed"
NEEDS_STACK = (
    "the services belong to the CloudFormation stack: give --stack "
    "(or --migrate-only to run the migrations alone)"
)


@dataclass(frozen=True)
class Container:
    """A long-running container and the one-shot migration job that must succeed before it."""

    name: str
    migration: str | None

    @property
    def stack_parameter(self) -> str:
        """The stack parameter holding this service's task definition ARN."""
        return f"{self.name.capitalize()}TaskDefinitionArn"


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
    stack_delay: int = 15
    stack_attempts: int = 120


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
        cloudformation: Any = None,
        stack: str | None = None,
        timing: Timing | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        check_settings(values)
        self.values = dict(values)
        self.ecs: Any = ecs  # a boto3 ECS client; None for a dry run
        self.dry_run = ecs is None
        # A boto3 CloudFormation client (read from in a dry run too) and the stack's name.
        self.cloudformation: Any = cloudformation
        self.stack = stack
        self.timing = timing or Timing()
        self.say = say
        session = botocore.session.get_session()
        self.models = {name: session.get_service_model(name) for name in ("ecs", "cloudformation")}
        self.cluster: str = values.get("ClusterName", "")
        if not self.cluster:
            raise SettingsError("setting ClusterName is missing")

    def call(self, operation: str, service: str = "ecs", **params: Any) -> Any:
        """Validate params against the service's model; print them in a dry run, else call."""
        input_shape = self.models[service].operation_model(operation).input_shape
        report = ParamValidator().validate(params, input_shape)
        if report.has_errors():
            raise ReleaseError(f"{operation}: invalid parameters:\n{report.generate_report()}")
        if self.dry_run:
            self.say(f"would call {service} {operation} {json.dumps(params, sort_keys=True)}")
            return None
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
        client = self.ecs if service == "ecs" else self.cloudformation
        return getattr(client, method)(**params)

    def task_definition(self, name: str) -> dict[str, Any]:
        rendered: dict[str, Any] = render(
            load_template(TASK_DEFINITIONS_DIR / f"{name}.json"), self.values
        )
        return rendered

    def run(self, containers: Sequence[Container], *, migrate_only: bool = False) -> dict[str, str]:
        """The whole release; returns the task definition ARN of each container released.

        With `migrate_only`, the migration jobs only (App Runner, Express Mode and Lambda
        deployments run their migrations this way, on the stack's cluster).
        """
        if not migrate_only and (self.stack is None or self.cloudformation is None):
            raise SettingsError(NEEDS_STACK)
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

        arns = {name: self.register(definition) for name, definition in definitions.items()}
        for container in containers:
            if container.migration:
                self.migrate(container, arns[container.migration])
        if migrate_only:
            return arns
        self.update_stack({container: arns[container.name] for container in containers})
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
        subnets = self.values.get("PrivateSubnetIds", [])
        response = self.call(
            "RunTask",
            cluster=self.cluster,
            taskDefinition=task_definition_arn,
            count=1,
            launchType="FARGATE",
            platformVersion=PLATFORM_VERSION,
            # The services' network: private subnets, the services' group (database access).
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": [subnets] if isinstance(subnets, str) else list(subnets),
                    "securityGroups": [self.values.get("ServiceSecurityGroupId", "")],
                    "assignPublicIp": "DISABLED",
                }
            },
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

    def update_stack(self, arns: Mapping[Container, str]) -> None:
        """Point the stack's services at the new task definitions; every other parameter
        keeps its value. The stack creates a service the first time its ARN is set."""
        if self.stack is None or self.cloudformation is None:
            raise SettingsError(NEEDS_STACK)
        described = self.cloudformation.describe_stacks(StackName=self.stack)["Stacks"][0]
        new = {container.stack_parameter: arn for container, arn in arns.items()}
        unknown = set(new) - {item["ParameterKey"] for item in described.get("Parameters", [])}
        if unknown:
            raise ReleaseError(
                f"stack {self.stack} has no parameter {', '.join(sorted(unknown))}: "
                "deploy deploy/cloudformation/platform.yaml to it first"
            )
        parameters = [
            {"ParameterKey": item["ParameterKey"], "ParameterValue": new[item["ParameterKey"]]}
            if item["ParameterKey"] in new
            else {"ParameterKey": item["ParameterKey"], "UsePreviousValue": True}
            for item in described.get("Parameters", [])
        ]
        try:
            self.call(
                "UpdateStack",
                "cloudformation",
                StackName=self.stack,
                UsePreviousTemplate=True,
                Parameters=parameters,
                Capabilities=["CAPABILITY_IAM"],
            )
        except ClientError as error:
            if NO_UPDATES not in str(error.response["Error"].get("Message", "")):
                raise
            self.say(f"stack {self.stack}: unchanged, the services already run these revisions")
            return
        if self.dry_run:
            self.say(f"would wait until stack {self.stack} is UPDATE_COMPLETE")
            return
        self.say(f"stack {self.stack}: updating {', '.join(f'{k}={v}' for k, v in new.items())}")
        try:
            self.cloudformation.get_waiter("stack_update_complete").wait(
                StackName=self.stack,
                WaiterConfig={
                    "Delay": self.timing.stack_delay,
                    "MaxAttempts": self.timing.stack_attempts,
                },
            )
        except WaiterError as error:
            raise ReleaseError(
                f"stack {self.stack}: the update failed ({error}); CloudFormation rolls the "
                "stack, and with it the services, back. See "
                f"`aws cloudformation describe-stack-events --stack-name {self.stack}`."
            ) from error
        self.say(f"stack {self.stack}: updated")

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
    parser.add_argument(
        "--stack",
        help="the CloudFormation stack: its outputs fill the settings, it owns the services",
    )
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
        cloudformation = session.client("cloudformation") if arguments.stack else None
        selected = [c for c in CONTAINERS if not arguments.only or c.name in arguments.only]
        Release(values, ecs, cloudformation=cloudformation, stack=arguments.stack).run(
            selected, migrate_only=arguments.migrate_only
        )
    except SettingsError as error:
        print(f"release: bad settings: {error}", file=sys.stderr)
        return 2
    except (ReleaseError, ClientError) as error:
        print(f"release: failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
