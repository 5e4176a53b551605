"""AWS Lambda entry point: `auth_service.aws_lambda.handler` (deploy/lambda/auth.json).

The app behind API Gateway (HTTP API) or an ALB, through `service_kit.aws_lambda`: secrets
(`DATABASE_URL`, `KEY_ENCRYPTION_KEY`) come from Secrets Manager or SSM by their
`NAME_SECRET_ARN` variables, and the lifespan runs once per execution environment.
PostgreSQL only: SQLite is refused.
"""

from auth_service.main import create_app
from auth_service.settings import Settings
from service_kit.aws_lambda import LambdaApp, resolve_secret_arns

__all__ = ["handler", "lambda_app", "resolve_secret_arns"]

lambda_app = LambdaApp(create_app, Settings)
handler = lambda_app.handler
