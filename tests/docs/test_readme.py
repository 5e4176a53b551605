"""The README documents every setting, and its quick start is exactly the two commands."""

import re

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from auth_service.settings import Settings as AuthSettings
from testsupport import ROOT
from users_service.settings import Settings as UsersSettings

README = (ROOT / "README.md").read_text()


def _environment_names(settings: type[BaseSettings]) -> set[str]:
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(str(alias) if alias else name.upper())
    return names


def _gateway_names() -> set[str]:
    script = (ROOT / "gateway" / "traefik.sh").read_text()
    return set(re.findall(r'^: "\$\{([A-Z_]+):=', script, flags=re.MULTILINE)) | {"TRAEFIK_BIN"}


@pytest.mark.parametrize(
    "name",
    sorted(
        _environment_names(AuthSettings)
        | _environment_names(UsersSettings)
        | _gateway_names()
        | {"AUTH_REPLICAS", "USERS_REPLICAS", "AUTH_REPLICA_PORTS", "USERS_REPLICA_PORTS"}
    ),
)
def test_every_setting_is_in_the_readme(name: str) -> None:
    assert f"`{name}`" in README


def test_the_quick_start_is_make_run_and_make_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines()[1:]]
    assert [c for c in commands if c] == ["make run", "make test"]
