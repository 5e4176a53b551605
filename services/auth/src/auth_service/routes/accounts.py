"""Registration, and what a signed-in account does with its credentials."""

import contextlib
import json
import uuid
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from auth_service import accounts, credentials
from auth_service.accounts import AccountTakenError, InvalidAccountFieldError
from auth_service.clock import utcnow
from auth_service.dependencies import ClientAddress, CurrentCaller, IssuanceDep, PasswordRulesDep
from auth_service.passwords import PasswordPolicyError
from auth_service.sign_in import BadCredentialsError, ThrottledError
from service_kit.db import DbSession
from service_kit.openapi import GATEWAY_RATE_LIMITED, problem_response, problem_responses
from service_kit.problems import problem

router = APIRouter(tags=["accounts"])

# Generous bounds that keep absurd input away from the validators; the rules are stricter.
_PASSWORD = Field(min_length=1, max_length=1024)


class RegisterRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "password": "correct horse battery", "username": "ada"}
            ]
        },
    )

    email: str = Field(min_length=3, max_length=320)
    password: str = _PASSWORD
    username: str | None = Field(default=None, max_length=64)


class AccountOut(BaseModel):
    id: uuid.UUID
    email: str
    username: str | None
    roles: list[str]
    created_at: datetime


class PasswordChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = _PASSWORD
    new_password: str = _PASSWORD


async def json_body(request: Request) -> None:
    """Only JSON objects, each member once: a repeated member is refused, not overwritten."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "The body must be application/json.")

    def refuse_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        names = [name for name, _ in pairs]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise HTTPException(422, f"Repeated member: {', '.join(repeated)}.")
        return dict(pairs)

    # Malformed JSON is left to FastAPI, which answers it as a 422.
    with contextlib.suppress(ValueError):
        json.loads(await request.body(), object_pairs_hook=refuse_duplicates)


JsonBody = Depends(json_body)


def field_problem(status_code: int, field: str, message: str, rule: str) -> Response:
    return problem(
        status_code, message, errors=[{"field": field, "message": message, "type": rule}]
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=AccountOut,
    dependencies=[JsonBody],
    responses={
        409: problem_response(409, "The email or the username is taken; `field` says which."),
        415: problem_response(415),
        422: problem_response(422, "Invalid; for a password, `errors` names the rule it breaks."),
        429: GATEWAY_RATE_LIMITED,
    },
)
async def register(
    body: RegisterRequest, db: DbSession, rules: PasswordRulesDep, address: ClientAddress
) -> AccountOut | Response:
    """Create an account. 422 names the rule a password breaks; 409 when email or username
    is taken."""
    try:
        account = await accounts.register(
            db,
            rules,
            email=body.email,
            password=body.password,
            username=body.username,
            now=utcnow(),
            client_address=address,
        )
    except InvalidAccountFieldError as exc:
        return field_problem(422, exc.field, str(exc), f"invalid_{exc.field}")
    except PasswordPolicyError as exc:
        return field_problem(422, "password", str(exc), exc.rule)
    except AccountTakenError as exc:
        return problem(409, f"This {exc.field} is already registered.", field=exc.field)
    return AccountOut.model_validate(account, from_attributes=True)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    dependencies=[JsonBody],
    responses={
        403: problem_response(403, "The current password is wrong.", headers={}),
        **problem_responses(415, 422, 429),
    },
)
async def change_password(
    body: PasswordChangeRequest,
    caller: CurrentCaller,
    db: DbSession,
    rules: PasswordRulesDep,
    issuance: IssuanceDep,
    address: ClientAddress,
) -> Response:
    """Change the password (the current one is required); every other session is revoked,
    the caller's own stays signed in. The current password goes through the same throttled
    check as a sign-in: 403 when wrong, 429 with Retry-After when throttled."""
    try:
        await credentials.change_password(
            db,
            rules,
            issuance.throttle,
            caller.account,
            current_password=body.current_password,
            new_password=body.new_password,
            keep_session=caller.claims.session_id,
            client_address=address,
        )
    except ThrottledError as exc:
        return problem(
            429,
            "Too many wrong passwords; try again later.",
            headers={"Retry-After": str(exc.retry_after)},
        )
    except BadCredentialsError:
        return problem(403, "The current password is incorrect.")
    except PasswordPolicyError as exc:
        return field_problem(422, "new_password", str(exc), exc.rule)
    return Response(status_code=204)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT, response_model=None)
async def logout_all(caller: CurrentCaller, db: DbSession, address: ClientAddress) -> Response:
    """Revoke every session of the caller's account, this one included."""
    await credentials.sign_out_everywhere(db, caller.account.id, client_address=address)
    return Response(status_code=204)
