"""The client's address behind each deployment's hops, and never one a client chose.

The table of hops is testsupport/forwarding_chains.py: each row is a request as it reaches a
service (peer, headers) in one deployment, run here with that deployment's TRUSTED_PROXIES.
"""

import asyncio
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request
from httpx import ASGITransport, AsyncClient
from starlette.types import Message, Receive, Scope, Send

from service_kit.aws_lambda import LambdaApp
from service_kit.client_address import (
    ClientAddressMiddleware,
    TrustedProxies,
    client_address,
    forwarded_for,
)
from service_kit.logging import configure_logging
from service_kit.request_context import RequestContextMiddleware
from testsupport.forwarding_chains import (
    CLIENT,
    SERVICE_CASES,
    SPOOF,
    TRUSTED_PROXIES,
    ChainCase,
    Headers,
)

pytestmark = pytest.mark.anyio


def scope_for(peer: str | None, headers: Headers) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": "/whoami",
        "headers": [(name.encode(), value.encode()) for name, value in headers],
        "client": (peer, 43210) if peer else None,
    }


async def seen_client(trusted_proxies: str, peer: str | None, headers: Headers) -> Any:
    """What a route behind ClientAddressMiddleware finds in `scope["client"]`."""
    seen: list[Any] = []

    async def route(scope: Scope, _receive: Receive, _send: Send) -> None:
        seen.append(scope["client"])

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(_message: Message) -> None:
        return None

    await ClientAddressMiddleware(route, trusted_proxies)(scope_for(peer, headers), receive, send)
    return seen[0][0] if seen[0] else None


@pytest.mark.parametrize(
    "case",
    [case for case in SERVICE_CASES if not case.deployment.startswith("lambda")],
    ids=lambda case: case.id,
)
async def test_each_deployments_chain_gives_the_clients_own_address(case: ChainCase) -> None:
    trusted = TRUSTED_PROXIES[case.deployment]
    assert await seen_client(trusted, case.peer, case.headers) == case.client


async def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    headers = (("x-forwarded-for", f"{SPOOF}, 127.0.0.1"),)
    assert await seen_client("127.0.0.1", CLIENT, headers) == CLIENT


async def test_with_no_trusted_proxy_the_header_is_never_read() -> None:
    assert await seen_client("", "127.0.0.1", (("x-forwarded-for", SPOOF),)) == "127.0.0.1"


def test_a_trusted_peer_that_forwards_nothing_is_the_client() -> None:
    assert client_address("10.0.0.5", [], TrustedProxies("10.0.0.0/8")) == "10.0.0.5"


def test_an_entry_that_is_no_address_keeps_the_peer_rather_than_a_chosen_string() -> None:
    trusted = TrustedProxies("10.0.0.0/8")
    assert client_address("10.0.0.5", ["evil", CLIENT, "10.0.0.9"], trusted) == CLIENT
    assert client_address("10.0.0.5", [CLIENT, "unknown", "10.0.0.9"], trusted) == "10.0.0.5"
    assert client_address("10.0.0.5", [CLIENT, "x" * 5000], trusted) == "10.0.0.5"


def test_when_every_entry_is_a_proxy_the_leftmost_is_the_client() -> None:
    trusted = TrustedProxies("10.0.0.0/8")
    assert client_address("10.0.0.5", ["10.0.0.7", "10.0.0.9"], trusted) == "10.0.0.7"


def test_ipv4_mapped_and_bracketed_addresses_are_plain_addresses() -> None:
    trusted = TrustedProxies("127.0.0.1")
    assert client_address("::ffff:127.0.0.1", [f"[::ffff:{CLIENT}]:443"], trusted) == CLIENT
    assert client_address("127.0.0.1", ["[2001:db8::7]:443"], trusted) == "2001:db8::7"


def test_several_header_lines_read_as_one_list_in_order() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2"), (b"X-Forwarded-For", b"3.3.3.3,")]
    assert forwarded_for(headers) == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]


@pytest.mark.parametrize("value", ["*", "10.0.0.0/33", "localhost", "10.0.0.0/8;"])
def test_trusted_proxies_refuse_what_is_not_an_address_or_a_network(value: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be"):
        TrustedProxies(value)


def test_trusted_proxies_hold_addresses_and_networks_of_both_families() -> None:
    trusted = TrustedProxies(" 127.0.0.1 , ::1,10.0.0.0/16 ")
    assert not TrustedProxies("")
    for inside in ("127.0.0.1", "::1", "10.0.255.255"):
        assert client_address(inside, [CLIENT], trusted) == CLIENT
    for outside in ("127.0.0.2", "::2", "10.1.0.0"):
        assert client_address(outside, [SPOOF], trusted) == outside


def app_that_answers_its_client(trusted_proxies: str) -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        return {"client": request.client.host if request.client else None}

    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(ClientAddressMiddleware, trusted_proxies=trusted_proxies)
    return app


async def test_routes_and_the_access_log_see_the_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("kit", "INFO")
    app = app_that_answers_its_client("10.0.0.0/16")
    transport = ASGITransport(app, client=("10.0.1.17", 5000))
    async with AsyncClient(transport=transport, base_url="http://kit.test") as client:
        response = await client.get(
            "/whoami", headers={"X-Forwarded-For": f"{SPOOF}, {CLIENT}", "X-Request-ID": "who-1"}
        )
    assert response.json() == {"client": CLIENT}
    access = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"who-1"' in line and '"request"' in line
    ]
    assert [line["client"] for line in access] == [CLIENT]


# --- Lambda: the event is the connection; the adapter gives the app the front end's peer ---


def http_api_event(case: ChainCase) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/whoami",
        "rawQueryString": "",
        "headers": {"host": "api.example", **dict(case.headers)},
        "requestContext": {
            "http": {"method": "GET", "path": "/whoami", "sourceIp": case.peer},
            "requestId": "r",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def alb_event(case: ChainCase) -> dict[str, Any]:
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg"}},
        "httpMethod": "GET",
        "path": "/whoami",
        "queryStringParameters": {},
        "headers": {"host": "alb.example", **dict(case.headers)},
        "body": "",
        "isBase64Encoded": False,
    }


@pytest.fixture
def lambda_app() -> Iterator[LambdaApp[Any]]:
    """The Lambda adapter in front of an app that trusts no proxy, as deploy/lambda/ sets."""
    settings = SimpleNamespace(
        database_url="postgresql+asyncpg://unused", environment="production", trusted_proxies=""
    )
    application: LambdaApp[Any] = LambdaApp(
        lambda loaded: app_that_answers_its_client(loaded.trusted_proxies), lambda: settings
    )
    yield application
    application.close()
    asyncio.set_event_loop(None)


@pytest.mark.parametrize(
    "case",
    [case for case in SERVICE_CASES if case.deployment.startswith("lambda")],
    ids=lambda case: case.id,
)
def test_under_lambda_the_client_is_the_one_aws_front_end_saw(
    lambda_app: LambdaApp[Any], case: ChainCase
) -> None:
    assert TRUSTED_PROXIES[case.deployment] == ""
    event = http_api_event(case) if case.deployment == "lambda-http-api" else alb_event(case)
    response = lambda_app.handler(event, SimpleNamespace(aws_request_id="r"))
    assert json.loads(response["body"]) == {"client": case.client}


def test_an_alb_event_without_the_header_has_no_client(lambda_app: LambdaApp[Any]) -> None:
    case = ChainCase("lambda-alb", "no header", None, (), None)
    response = lambda_app.handler(alb_event(case), SimpleNamespace(aws_request_id="r"))
    assert json.loads(response["body"]) == {"client": None}
