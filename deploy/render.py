"""Fill a deploy template's `${Name}` placeholders from the settings, refusing unsafe ones.

    python -m deploy.render deploy/apprunner/auth.json --settings deploy/settings.json
           [--stack auth-platform] > auth.json

The settings are a flat JSON object (deploy/settings.example.json); with `--stack`, the
CloudFormation stack's outputs come first and the file's values override them. The output
is the JSON an AWS CLI `--cli-input-json file://...` takes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

PLACEHOLDER = re.compile(r"\$\{([A-Za-z][A-Za-z0-9]*)\}")
# Docker's tag grammar; `latest` is refused: a deployment names an immutable image.
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
SECRET_ARN = re.compile(r"arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:\S+")


class SettingsError(Exception):
    """A setting is missing or unusable; nothing was deployed."""


def load_template(path: Path) -> Any:
    return json.loads(path.read_text())


def placeholders(template: Any) -> set[str]:
    """Every `${Name}` a template uses."""
    return set(PLACEHOLDER.findall(json.dumps(template)))


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill `${Name}` from values; a list element that is exactly `${Name}` of a list splats."""

    def lookup(name: str) -> Any:
        if name not in values:
            raise SettingsError(f"setting {name} is missing")
        return values[name]

    def text(match: re.Match[str]) -> str:
        value = lookup(match[1])
        if not isinstance(value, str):
            raise SettingsError(f"setting {match[1]} must be a string here, not {value!r}")
        return value

    if isinstance(template, dict):
        return {key: render(value, values) for key, value in template.items()}
    if isinstance(template, list):
        rendered: list[Any] = []
        for item in template:
            whole = PLACEHOLDER.fullmatch(item) if isinstance(item, str) else None
            if whole and isinstance(lookup(whole[1]), list):
                rendered.extend(lookup(whole[1]))
            else:
                rendered.append(render(item, values))
        return rendered
    if isinstance(template, str):
        return PLACEHOLDER.sub(text, template)
    return template


def check_settings(values: Mapping[str, Any], used: set[str] | None = None) -> None:
    """Refuse a mutable image tag and a secret given as anything but an ARN.

    `used` limits the checks to the settings a template uses (default: all of them).
    """
    names = set(values) if used is None else used
    if "ImageTag" in names:
        tag = values.get("ImageTag")
        if not isinstance(tag, str) or not IMAGE_TAG.fullmatch(tag) or tag.lower() == "latest":
            raise SettingsError(
                f"ImageTag must be an immutable image tag (not empty, not 'latest'), got {tag!r}"
            )
    for name in sorted(names):
        if name.endswith("SecretArn"):
            arn = values.get(name)
            if not isinstance(arn, str) or not SECRET_ARN.fullmatch(arn):
                raise SettingsError(
                    f"{name} must be the ARN of a Secrets Manager secret or an SSM "
                    f"parameter, got {arn!r}"
                )


def load_settings(path: Path | None, outputs: Mapping[str, str]) -> dict[str, Any]:
    """The stack's outputs (comma-separated `...Ids` become lists), then the file's values."""
    values: dict[str, Any] = {
        key: [part for part in value.split(",") if part] if key.endswith("Ids") else value
        for key, value in outputs.items()
    }
    if path is not None:
        loaded = json.loads(path.read_text())
        if not isinstance(loaded, dict):
            raise SettingsError(f"{path}: expected a JSON object of settings")
        values.update(loaded)
    return values


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """A CloudFormation stack's outputs, by output key."""
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.render", description=__doc__)
    parser.add_argument("template", type=Path)
    parser.add_argument("--settings", type=Path)
    parser.add_argument("--stack", help="CloudFormation stack whose outputs fill the settings")
    parser.add_argument("--region", help="AWS region of the stack (default: the settings' Region)")
    arguments = parser.parse_args(argv)
    try:
        outputs: dict[str, str] = {}
        if arguments.stack:
            region = arguments.region or load_settings(arguments.settings, {}).get("Region")
            cloudformation = boto3.session.Session(region_name=region).client("cloudformation")
            outputs = stack_outputs(cloudformation, arguments.stack)
        values = load_settings(arguments.settings, outputs)
        template = load_template(arguments.template)
        check_settings(values, placeholders(template))
        rendered = render(template, values)
    except SettingsError as error:
        print(f"render: bad settings: {error}", file=sys.stderr)
        return 2
    json.dump(rendered, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
