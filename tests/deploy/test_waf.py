"""deploy/cloudformation/waf.yaml: the gateway's rate limit where there is no gateway.

Lint-clean; the web ACL is a valid CreateWebACL call (botocore's WAFv2 model); its rule is
the gateway's: per client address, on the paths the gateway limits, 429 with Retry-After.
"""

import re
from functools import cache
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint, lint_file  # type: ignore[import-untyped]
from cfnlint.decode import decode_str  # type: ignore[import-untyped]

from testsupport import ROOT
from testsupport.deploy_templates import DEPLOY, validation_errors

TEMPLATE = DEPLOY / "cloudformation" / "waf.yaml"
LINT_REGIONS = ManualArgs(regions=["us-east-1", "eu-west-1"])
APP_RUNNER_ARN = (
    "arn:aws:apprunner:eu-west-1:123456789012:service/auth-platform-auth/"
    "0123456789abcdef0123456789abcdef"
)
LOAD_BALANCER_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:"
    "loadbalancer/app/ecs-express-gateway-alb-1/0123456789abcdef"
)
WEB_ACL_ARN = (
    "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/auth-platform/"
    "01234567-89ab-cdef-0123-456789abcdef"
)


@cache
def template() -> dict[str, Any]:
    decoded, errors = decode_str(TEMPLATE.read_text())
    assert not errors
    result: dict[str, Any] = decoded
    return result


def resolve(value: Any, key: str = "") -> Any:
    """The properties as the WAFv2 API takes them: each Ref is its parameter's default
    (a string where the API wants one, as CloudFormation passes a Number's)."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            default = template()["Parameters"][value["Ref"]]["Default"]
            return str(default) if key == "Value" else default
        return {name: resolve(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, key) for item in value]
    return value


def web_acl() -> dict[str, Any]:
    properties: dict[str, Any] = resolve(template()["Resources"]["WebAcl"]["Properties"])
    return properties


def rule() -> dict[str, Any]:
    (only,) = web_acl()["Rules"]
    result: dict[str, Any] = only
    return result


def test_cfn_lint_finds_nothing() -> None:
    assert [str(match) for match in lint_file(TEMPLATE, LINT_REGIONS)] == []


def test_cfn_lint_does_find_a_broken_template() -> None:
    broken = TEMPLATE.read_text().replace("AggregateKeyType: IP", "AggregateKeyType: CLIENT", 1)
    assert any("CLIENT" in str(match) for match in lint(broken, config=LINT_REGIONS))


def test_the_web_acl_is_a_valid_create_web_acl_call() -> None:
    assert validation_errors("wafv2", "CreateWebACL", web_acl()) == ""
    assert web_acl()["Scope"] == "REGIONAL"  # App Runner and load balancers; not CloudFront


def test_the_validator_rejects_a_broken_web_acl() -> None:
    broken = web_acl()
    broken["Rules"][0]["Statement"]["RateBasedStatement"]["Limit"] = "many"
    assert "Limit" in validation_errors("wafv2", "CreateWebACL", broken)


def test_the_rule_limits_each_client_address_on_the_gateways_rate_limited_paths() -> None:
    statement = rule()["Statement"]["RateBasedStatement"]
    # The address the connection came from, never a header a client can write.
    assert statement["AggregateKeyType"] == "IP"
    paths = {
        match["ByteMatchStatement"]["SearchString"]
        for match in statement["ScopeDownStatement"]["OrStatement"]["Statements"]
    }
    dynamic = (ROOT / "gateway" / "dynamic.yml").read_text()
    limited = re.search(r"auth-rate-limited:.*?rule: \"(.*?)\"", dynamic, re.DOTALL)
    assert limited
    assert paths == set(re.findall(r"Path\(`([^`]+)`\)", limited[1]))
    for match in statement["ScopeDownStatement"]["OrStatement"]["Statements"]:
        assert match["ByteMatchStatement"]["PositionalConstraint"] == "EXACTLY"


def test_the_default_limit_is_the_gateways_average() -> None:
    script = (ROOT / "gateway" / "traefik.sh").read_text()
    average = re.search(r"GATEWAY_RATE_AVERAGE:=(\d+)", script)
    assert average
    statement = rule()["Statement"]["RateBasedStatement"]
    assert statement["Limit"] == int(average[1]) * statement["EvaluationWindowSec"]


def test_a_limited_client_gets_429_with_retry_after_as_from_the_gateway() -> None:
    response = rule()["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    headers = {header["Name"]: header["Value"] for header in response["ResponseHeaders"]}
    window = rule()["Statement"]["RateBasedStatement"]["EvaluationWindowSec"]
    assert headers == {"Retry-After": str(window)}
    assert response["CustomResponseBodyKey"] in web_acl()["CustomResponseBodies"]


def test_each_association_exists_only_when_its_resource_is_given() -> None:
    resources = template()["Resources"]
    associations = {
        name: body
        for name, body in resources.items()
        if body["Type"] == "AWS::WAFv2::WebACLAssociation"
    }
    assert set(associations) == {"AuthAssociation", "UsersAssociation"}
    for name, body in associations.items():
        parameter = body["Properties"]["ResourceArn"]["Ref"]
        assert template()["Parameters"][parameter]["Default"] == ""
        condition = template()["Conditions"][body["Condition"]]
        assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}, name
        assert body["Properties"]["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}


@pytest.mark.parametrize("resource", [APP_RUNNER_ARN, LOAD_BALANCER_ARN])
def test_app_runner_services_and_load_balancers_can_be_protected(resource: str) -> None:
    pattern = template()["Parameters"]["AuthResourceArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, resource)
    call = {"WebACLArn": WEB_ACL_ARN, "ResourceArn": resource}
    assert validation_errors("wafv2", "AssociateWebACL", call) == ""


@pytest.mark.parametrize(
    "resource",
    [
        # Where AWS offers no web ACL association (deploy/README.md says what replaces it).
        "arn:aws:apigateway:eu-west-1::/apis/abc123/stages/$default",
        "arn:aws:lambda:eu-west-1:123456789012:function:auth-platform-auth",
    ],
    ids=["http-api", "lambda-function-url"],
)
def test_resources_aws_waf_cannot_protect_are_refused(resource: str) -> None:
    for parameter in ("AuthResourceArn", "UsersResourceArn"):
        pattern = template()["Parameters"][parameter]["AllowedPattern"]
        assert not re.fullmatch(pattern, resource)
