"""deploy/apprunner and deploy/express-mode: valid calls per public service, wired to auth's URL."""

import re
from typing import Any

import pytest

from deploy.render import load_template, placeholders
from testsupport.deploy_templates import DEPLOY, example_settings, rendered, validation_errors

SERVICES = ("auth", "users")
ARN = re.compile(r"arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:\S+")
SECRET_LOOKING = re.compile(r"PASSWORD|SECRET|PRIVATE|CREDENTIAL|(^|_)KEY($|_)|DATABASE_URL")


def app_runner(service: str) -> Any:
    return rendered(DEPLOY / "apprunner" / f"{service}.json")


def express(service: str) -> Any:
    return rendered(DEPLOY / "express-mode" / f"{service}.json")


@pytest.mark.parametrize("service", SERVICES)
def test_app_runner_service_is_a_valid_create_service_call(service: str) -> None:
    assert validation_errors("apprunner", "CreateService", app_runner(service)) == ""


@pytest.mark.parametrize("service", SERVICES)
def test_express_mode_service_is_a_valid_create_express_gateway_service_call(service: str) -> None:
    assert validation_errors("ecs", "CreateExpressGatewayService", express(service)) == ""


@pytest.mark.parametrize("service", SERVICES)
def test_app_runner_keeps_secrets_out_of_plain_variables(service: str) -> None:
    image = app_runner(service)["SourceConfiguration"]["ImageRepository"]
    configuration = image["ImageConfiguration"]
    assert not [
        name for name in configuration["RuntimeEnvironmentVariables"] if SECRET_LOOKING.search(name)
    ]
    assert "DATABASE_URL" in configuration["RuntimeEnvironmentSecrets"]
    assert all(ARN.fullmatch(arn) for arn in configuration["RuntimeEnvironmentSecrets"].values())
    assert not image["ImageIdentifier"].endswith(":latest")
    assert app_runner(service)["SourceConfiguration"]["AutoDeploymentsEnabled"] is False
    assert app_runner(service)["HealthCheckConfiguration"]["Path"] == f"/{service}/health"


@pytest.mark.parametrize("service", SERVICES)
def test_express_mode_keeps_secrets_out_of_plain_variables(service: str) -> None:
    container = express(service)["primaryContainer"]
    assert not [
        item["name"] for item in container["environment"] if SECRET_LOOKING.search(item["name"])
    ]
    assert all(ARN.fullmatch(item["valueFrom"]) for item in container["secrets"])
    assert not container["image"].endswith(":latest")
    assert express(service)["healthCheckPath"] == f"/{service}/health"


def test_users_trust_the_key_set_and_issuer_at_the_auth_services_url() -> None:
    # No gateway and no Service Connect here: each service has its own URL.
    for variables in (
        app_runner("users")["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"][
            "RuntimeEnvironmentVariables"
        ],
        {
            item["name"]: item["value"]
            for item in express("users")["primaryContainer"]["environment"]
        },
    ):
        assert variables["JWKS_URL"] == "https://auth.example.com/.well-known/jwks.json"
        assert variables["PUBLIC_URL"] == "https://auth.example.com"
    template = load_template(DEPLOY / "apprunner" / "users.json")
    variables = template["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"][
        "RuntimeEnvironmentVariables"
    ]
    assert variables["JWKS_URL"] == "${AuthPublicUrl}/.well-known/jwks.json"


def test_only_auth_holds_the_key_encryption_key() -> None:
    users_secrets = app_runner("users")["SourceConfiguration"]["ImageRepository"][
        "ImageConfiguration"
    ]["RuntimeEnvironmentSecrets"]
    assert "KEY_ENCRYPTION_KEY" not in users_secrets
    assert "KEY_ENCRYPTION_KEY" not in {
        item["name"] for item in express("users")["primaryContainer"]["secrets"]
    }


def test_every_placeholder_is_a_documented_example_setting() -> None:
    templates = [path for path in DEPLOY.rglob("*.json") if path.name != "settings.example.json"]
    used = set().union(*(placeholders(load_template(path)) for path in templates))
    readme = (DEPLOY / "README.md").read_text()
    assert sorted(name for name in used if f"`{name}`" not in readme) == []
    assert used - {"TaskDefinitionArn"} == set(example_settings())
