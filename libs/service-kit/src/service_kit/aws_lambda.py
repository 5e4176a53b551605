"""Run a service on AWS Lambda behind API Gateway (HTTP API) or an ALB, through Mangum.

Each service's `aws_lambda` module builds one `LambdaApp` at import (the cold start):
1. each `NAME_SECRET_ARN` variable is read from Secrets Manager or SSM into `NAME`, so no
   secret sits in the function's configuration;
2. the app is built and its lifespan started once, for the life of the execution
   environment. Mangum's own `lifespan="auto"` would start and stop it around every
   invocation, disposing the database pool each time.
"""

import asyncio
import os
from collections.abc import Callable, MutableMapping
from typing import Any, Generic, Protocol, TypeVar

from fastapi import FastAPI
from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import LambdaContext, LambdaEvent
from starlette.types import ASGIApp, Receive, Scope, Send

from service_kit.client_address import forwarded_for, parse_address

ARN_REFERENCE_SUFFIX = "_SECRET_ARN"


class ServiceSettings(Protocol):
    """What the adapter reads of a service's settings."""

    @property
    def database_url(self) -> str: ...

    @property
    def environment(self) -> str: ...


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def resolve_secret_arns(environ: MutableMapping[str, str]) -> None:
    """Set NAME from the secret NAME_SECRET_ARN names (a Secrets Manager or SSM ARN)."""
    references = {
        name.removesuffix(ARN_REFERENCE_SUFFIX): arn
        for name, arn in environ.items()
        if name.endswith(ARN_REFERENCE_SUFFIX) and arn
    }
    if not references:
        return
    # boto3 ships with Lambda's Python runtime; nothing imports it outside Lambda.
    import boto3  # type: ignore[import-untyped]

    session = boto3.session.Session()
    for name, arn in references.items():
        if arn.split(":")[2] == "ssm":
            parameter = arn.split(":parameter", 1)[1]
            response = session.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
            environ[name] = response["Parameter"]["Value"]
        else:
            response = session.client("secretsmanager").get_secret_value(SecretId=arn)
            environ[name] = response["SecretString"]


def refuse_sqlite(settings: ServiceSettings) -> None:
    """SQLite on Lambda would be a database per execution environment, lost when it ends."""
    if settings.database_url.startswith("sqlite") and settings.environment != "development":
        raise RuntimeError(
            "DATABASE_URL is SQLite: on Lambda use PostgreSQL (each execution environment "
            "would have a database of its own, lost when it is recycled)"
        )


def load_balancer_client(scope: Scope) -> tuple[str, int] | None:
    """An ALB event's client: the last X-Forwarded-For entry, the one the load balancer
    appended (its `routing.http.xff_header_processing.mode` is `append`, the default)."""
    entries = forwarded_for(scope["headers"])
    address = parse_address(entries[-1]) if entries else None
    return (str(address), 0) if address else None


class _InvocationApp:
    """Give each request the state the lifespan started once (what Mangum does per call),
    and, for an ALB event, the client address the load balancer saw."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = self.state.copy()
        if scope["type"] == "http" and "elb" in scope["aws.event"].get("requestContext", {}):
            scope["client"] = load_balancer_client(scope)
        await self.app(scope, receive, send)


class LambdaApp(Generic[SettingsT]):
    """The app, its lifespan started once per execution environment, and Mangum in front."""

    def __init__(
        self, create_app: Callable[[SettingsT], FastAPI], settings: Callable[[], SettingsT]
    ) -> None:
        resolve_secret_arns(os.environ)
        loaded = settings()
        refuse_sqlite(loaded)
        app = create_app(loaded)
        # Mangum runs every invocation on the thread's current event loop, and the database
        # pool's connections belong to it: one loop for the life of the environment.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.lifespan = LifespanCycle(app, "on")
        self.lifespan.__enter__()
        self.mangum = Mangum(_InvocationApp(app, self.lifespan.lifespan_state), lifespan="off")

    def close(self) -> None:
        """Run the app's shutdown. Lambda never calls it: it freezes, then discards, the
        environment; tests and local runs do."""
        self.lifespan.__exit__(None, None, None)
        self.loop.close()

    def handler(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        """The Lambda handler: an API Gateway (REST or HTTP API) or ALB event in, a response out."""
        return self.mangum(event, context)
