"""The deploy templates, rendered with the example settings, and botocore's validation."""

import json
from pathlib import Path
from typing import Any

import botocore.session  # type: ignore[import-untyped]
from botocore.validate import ParamValidator  # type: ignore[import-untyped]

from deploy.render import load_template, render
from testsupport import ROOT

DEPLOY = ROOT / "deploy"
TASK_DEFINITIONS = sorted((DEPLOY / "ecs" / "task-definitions").glob("*.json"))
EXAMPLE_TASK_DEFINITION_ARN = (
    "arn:aws:ecs:eu-west-1:123456789012:task-definition/auth-platform-example:1"
)


def example_settings() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads((DEPLOY / "settings.example.json").read_text())
    return settings


def rendered(path: Path, **overrides: Any) -> Any:
    """A template filled with the example settings."""
    return render(load_template(path), {**example_settings(), **overrides})


def validation_errors(service: str, operation: str, params: Any) -> str:
    """botocore's own parameter validation against the installed API model ('' when valid)."""
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    return str(report.generate_report()) if report.has_errors() else ""
