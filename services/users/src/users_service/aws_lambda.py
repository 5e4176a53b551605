"""AWS Lambda entry point: `users_service.aws_lambda.handler` (deploy/lambda/users.json).

The app behind API Gateway (HTTP API) or an ALB, through `service_kit.aws_lambda`: secrets
(`DATABASE_URL`) come from Secrets Manager or SSM by their `NAME_SECRET_ARN` variables, and the
lifespan runs once per execution environment. PostgreSQL only: SQLite is refused.
"""

from service_kit.aws_lambda import LambdaApp, resolve_secret_arns
from users_service.main import create_app
from users_service.settings import Settings

__all__ = ["handler", "lambda_app", "resolve_secret_arns"]

lambda_app = LambdaApp(create_app, Settings)
handler = lambda_app.handler
