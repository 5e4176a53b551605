"""Mailed links: verify the account's email address, reset a forgotten password."""

from fastapi import APIRouter, BackgroundTasks, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from auth_service import password_reset, verification
from auth_service.dependencies import (
    ClientAddress,
    CurrentCaller,
    MailedLinksDep,
    PasswordRulesDep,
)
from auth_service.passwords import PasswordPolicyError
from auth_service.routes.accounts import JsonBody, field_problem
from auth_service.throttling import ThrottledError
from auth_service.verification import InvalidEmailTokenError
from service_kit.db import DatabaseDep, DbSession
from service_kit.openapi import problem_response, problem_responses
from service_kit.problems import problem

router = APIRouter(tags=["mailed links"])

_TOKEN = Field(min_length=1, max_length=256, description="The token the mailed link carries.")
_BAD_TOKEN = problem_response(400, "The token is unknown, expired or already used.")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = _TOKEN


class ForgotRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "ada@example.com"}]}
    )

    email: str = Field(min_length=1, max_length=320)


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = _TOKEN
    new_password: str = Field(min_length=1, max_length=1024)


def _throttled(exc: ThrottledError) -> Response:
    return problem(
        429,
        "Too many links asked for; try again later.",
        headers={"Retry-After": str(exc.retry_after)},
    )


@router.post(
    "/email/verify/request",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    response_model=None,
    responses=problem_responses(429),
)
async def request_verification(
    caller: CurrentCaller, db: DbSession, links: MailedLinksDep, address: ClientAddress
) -> Response:
    """Mail a link that verifies the caller's address (none when it is verified already).
    The link, `…/verify-email?token=…`, works once, for EMAIL_TOKEN_TTL_SECONDS."""
    try:
        await verification.request_verification(db, links, caller.account, client_address=address)
    except ThrottledError as exc:
        return _throttled(exc)
    return Response(status_code=202)


@router.post(
    "/email/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    dependencies=[JsonBody],
    responses={400: _BAD_TOKEN, **problem_responses(415)},
)
async def verify_email(body: TokenRequest, db: DbSession, address: ClientAddress) -> Response:
    """Mark the address verified with the token of a verification link: access tokens
    issued from then on carry `email_verified: true`."""
    try:
        await verification.verify_email(db, body.token, client_address=address)
    except InvalidEmailTokenError:
        return problem(400, "The token is unknown, expired or already used.")
    return Response(status_code=204)


@router.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    response_model=None,
    dependencies=[JsonBody],
    responses=problem_responses(415, 429),
)
async def forgot_password(
    body: ForgotRequest,
    db: DbSession,
    database: DatabaseDep,
    links: MailedLinksDep,
    address: ClientAddress,
    background: BackgroundTasks,
) -> Response:
    """Mail a password reset link to the account with this address, if there is one: the
    answer is 202 either way, in the same time (the link is written after answering).
    Throttled per address asked for and per client address (429 with Retry-After)."""
    try:
        await password_reset.forgot_password(db, links, body.email, client_address=address)
    except ThrottledError as exc:
        return _throttled(exc)
    background.add_task(
        password_reset.mail_reset_link, database, links, body.email, client_address=address
    )
    return Response(status_code=202)


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    dependencies=[JsonBody],
    responses={
        400: _BAD_TOKEN,
        422: problem_response(422, "Invalid; for the password, `errors` names the rule broken."),
        **problem_responses(415),
    },
)
async def reset_password(
    body: ResetRequest, db: DbSession, rules: PasswordRulesDep, address: ClientAddress
) -> Response:
    """Set a new password with the token of a reset link (the password rules apply: 422
    names the one broken, and the token stays usable); every session of the account is
    revoked."""
    try:
        await password_reset.reset_password(
            db, rules, body.token, body.new_password, client_address=address
        )
    except InvalidEmailTokenError:
        return problem(400, "The token is unknown, expired or already used.")
    except PasswordPolicyError as exc:
        return field_problem(422, "new_password", str(exc), exc.rule)
    return Response(status_code=204)
