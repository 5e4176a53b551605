"""The Mangum handlers (`<svc>_service.aws_lambda.handler`) driven by API Gateway v2 and ALB.

SQLite in a temporary directory stands in for PostgreSQL here, under ENVIRONMENT=development:
the handler refuses SQLite anywhere else (see deploy/README.md, Lambda).
"""

import base64
import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from moto import mock_aws

from testsupport.deploy_templates import DEPLOY, rendered, validation_errors

SERVICES = ("auth", "users")
CONTEXT = SimpleNamespace(function_name="auth-platform", aws_request_id="req-1")
PEER = "203.0.113.7"


def http_api_event(path: str, request_id: str) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) request."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "host": "abc123.execute-api.eu-west-1.amazonaws.com",
            "x-request-id": request_id,
            "x-forwarded-for": PEER,
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": PEER,
                "userAgent": "pytest",
            },
            "requestId": "api-request-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:17:00:00 +0000",
            "timeEpoch": 1795626000000,
        },
        "isBase64Encoded": False,
    }


def alb_event(path: str, request_id: str) -> dict[str, Any]:
    """An Application Load Balancer request to a Lambda target."""
    return {
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
                "targetgroup/auth-platform/0123456789abcdef"
            }
        },
        "httpMethod": "GET",
        "path": path,
        "queryStringParameters": {},
        "headers": {
            "host": "auth-platform-123.eu-west-1.elb.amazonaws.com",
            "x-request-id": request_id,
            "x-forwarded-for": PEER,
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
        },
        "body": "",
        "isBase64Encoded": False,
    }


def body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    return json.loads(base64.b64decode(raw) if response.get("isBase64Encoded") else raw)


def import_handler(service: str) -> ModuleType:
    name = f"{service}_service.aws_lambda"
    sys.modules.pop(name, None)
    return importlib.import_module(name)


@pytest.fixture(params=SERVICES)
def lambda_module(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ModuleType]]:
    """A cold start of one service's handler module, with its own SQLite database."""
    service: str = request.param
    for name in ("AUTH_DATABASE_URL", "USERS_DATABASE_URL", "DATABASE_URL_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / service}.sqlite3")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    module = import_handler(service)
    yield service, module
    module.lambda_app.close()


@pytest.mark.parametrize("event_for", [http_api_event, alb_event], ids=["http-api-v2", "alb"])
def test_health_answers_200_with_the_request_id(
    lambda_module: tuple[str, ModuleType], event_for: Any
) -> None:
    service, module = lambda_module
    response = module.handler(event_for(f"/{service}/health", "lambda-test-1"), CONTEXT)
    assert response["statusCode"] == 200
    assert body(response) == {"status": "ok"}
    headers = {key.lower(): value for key, value in response["headers"].items()}
    assert headers["x-request-id"] == "lambda-test-1"


# Users is ready only with auth's key set, which no server serves here: auth shows the pool.
@pytest.mark.parametrize("lambda_module", ["auth"], indirect=True)
@pytest.mark.parametrize("event_for", [http_api_event, alb_event], ids=["http-api-v2", "alb"])
def test_the_database_pool_survives_from_one_invocation_to_the_next(
    lambda_module: tuple[str, ModuleType], event_for: Any
) -> None:
    # Every invocation runs on the environment's one event loop: a pooled connection opened
    # by the first is still usable by the second (a loop per call would break it).
    service, module = lambda_module
    for attempt in range(3):
        response = module.handler(event_for(f"/{service}/ready", f"ready-{attempt}"), CONTEXT)
        assert response["statusCode"] == 200, body(response)


def test_an_unknown_path_is_a_problem_json_404(lambda_module: tuple[str, ModuleType]) -> None:
    _, module = lambda_module
    response = module.handler(http_api_event("/no-such-thing", "nf-1"), CONTEXT)
    assert response["statusCode"] == 404
    assert response["headers"]["content-type"] == "application/problem+json"


@pytest.mark.parametrize("service", SERVICES)
def test_sqlite_is_refused_outside_development(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(f"{service.upper()}_DATABASE_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    # Random bytes, as production requires (`auth-service keys generate-kek`).
    monkeypatch.setenv("KEY_ENCRYPTION_KEY", "Zcn0YSbSwjDVsNw0pDpKPT19Ce40_a3JjUtxAil3d-Q")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/x.sqlite3")
    with pytest.raises(RuntimeError, match="on Lambda use PostgreSQL"):
        import_handler(service)


def test_secret_arns_are_resolved_from_secrets_manager_and_ssm(
    lambda_module: tuple[str, ModuleType], aws_credentials: None
) -> None:
    _, module = lambda_module
    with mock_aws():
        secret = boto3.client("secretsmanager").create_secret(
            Name="auth-platform/auth/database-url",
            SecretString="postgresql+asyncpg://auth:pw@db.internal/auth",
        )["ARN"]
        boto3.client("ssm").put_parameter(
            Name="/auth-platform/key-encryption-key", Value="kek-from-ssm", Type="SecureString"
        )
        parameter = "arn:aws:ssm:eu-west-1:123456789012:parameter/auth-platform/key-encryption-key"
        environ = {
            "DATABASE_URL_SECRET_ARN": secret,
            "KEY_ENCRYPTION_KEY_SECRET_ARN": parameter,
            "LOG_LEVEL": "INFO",
        }
        module.resolve_secret_arns(environ)
    assert environ["DATABASE_URL"] == "postgresql+asyncpg://auth:pw@db.internal/auth"
    assert environ["KEY_ENCRYPTION_KEY"] == "kek-from-ssm"


@pytest.mark.parametrize("service", SERVICES)
def test_function_configuration_is_a_valid_create_function_call(service: str) -> None:
    function = rendered(DEPLOY / "lambda" / f"{service}.json")
    assert validation_errors("lambda", "CreateFunction", function) == ""
    assert function["Handler"] == f"{service}_service.aws_lambda.handler"
    variables = function["Environment"]["Variables"]
    assert "DATABASE_URL" not in variables, "a secret's ARN only, resolved at cold start"
    assert variables["DATABASE_URL_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    assert variables["ENVIRONMENT"] == "production"
    assert function["VpcConfig"]["SubnetIds"], "inside the VPC, next to PostgreSQL"


@pytest.mark.parametrize("event_for", [http_api_event, alb_event], ids=["http-api-v2", "alb"])
@pytest.mark.parametrize("service", SERVICES)
def test_a_client_that_writes_its_own_x_forwarded_for_is_still_known_by_its_address(
    service: str,
    event_for: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The function's own configuration (TRUSTED_PROXIES empty), and the access log's view.
    variables = rendered(DEPLOY / "lambda" / f"{service}.json")["Environment"]["Variables"]
    for name in ("AUTH_DATABASE_URL", "USERS_DATABASE_URL", "DATABASE_URL_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRUSTED_PROXIES", variables["TRUSTED_PROXIES"])
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / service}.sqlite3")
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    module = import_handler(service)
    try:
        event = event_for(f"/{service}/health", "spoof-1")
        # The client writes a header of its own; API Gateway and the ALB append its address.
        event["headers"]["x-forwarded-for"] = f"198.51.100.66, {PEER}"
        assert module.handler(event, CONTEXT)["statusCode"] == 200
    finally:
        module.lambda_app.close()
    access = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"spoof-1"' in line and '"service_kit.access"' in line
    ]
    assert [line["client"] for line in access] == [PEER]
