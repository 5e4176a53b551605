"""AWS Lambda entry point: the same app behind API Gateway (HTTP API) or an ALB, via Mangum.

Handler: `auth_service.aws_lambda.handler` (deploy/lambda/auth.json). At a cold start:
1. each `NAME_SECRET_ARN` variable is read from Secrets Manager or SSM into `NAME`
   (`DATABASE_URL`, `KEY_ENCRYPTION_KEY`), so no secret sits in the function's configuration;
2. the app is built and its lifespan started once, for the life of the execution
   environment. Mangum's own `lifespan="auto"` would start and stop it around every
   invocation, disposing the database pool each time.
"""

import asyncio
import os
from collections.abc import MutableMapping
from typing import Any

from mangum import Mangum
from mangum.protocols import LifespanCycle
from mangum.types import LambdaContext, LambdaEvent
from starlette.types import ASGIApp, Receive, Scope, Send

from auth_service.main import create_app
from auth_service.settings import Settings

ARN_REFERENCE_SUFFIX = "_SECRET_ARN"


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


def refuse_sqlite(settings: Settings) -> None:
    """SQLite on Lambda would be a database per execution environment, lost when it ends."""
    if settings.database_url.startswith("sqlite") and settings.environment != "development":
        raise RuntimeError(
            "DATABASE_URL is SQLite: on Lambda use PostgreSQL (each execution environment "
            "would have a database of its own, lost when it is recycled)"
        )


class _WithLifespanState:
    """Give each request the state the lifespan started once (what Mangum does per call)."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = self.state.copy()
        await self.app(scope, receive, send)


class LambdaApp:
    """The app, its lifespan started once per execution environment, and Mangum in front."""

    def __init__(self) -> None:
        resolve_secret_arns(os.environ)
        settings = Settings()
        refuse_sqlite(settings)
        app = create_app(settings)
        # Mangum runs every invocation on the thread's current event loop, and the database
        # pool's connections belong to it: one loop for the life of the environment.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.lifespan = LifespanCycle(app, "on")
        self.lifespan.__enter__()
        self.mangum = Mangum(_WithLifespanState(app, self.lifespan.lifespan_state), lifespan="off")

    def close(self) -> None:
        """Run the app's shutdown. Lambda never calls it: it freezes, then discards, the
        environment; tests and local runs do."""
        self.lifespan.__exit__(None, None, None)
        self.loop.close()


lambda_app = LambdaApp()


def handler(event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
    """The Lambda handler: an API Gateway (REST or HTTP API) or ALB event in, a response out."""
    return lambda_app.mangum(event, context)
