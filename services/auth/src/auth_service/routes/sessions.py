"""The caller's sign-in sessions (list them, end one), and the erasure of its account."""

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from auth_service import credentials
from auth_service.clock import utcnow
from auth_service.dependencies import ClientAddress, CurrentCaller, IssuanceDep, PasswordRulesDep
from auth_service.routes.accounts import JsonBody
from auth_service.sign_in import BadCredentialsError, ThrottledError
from auth_service.sign_in_sessions import live_sessions
from service_kit.db import DbSession
from service_kit.openapi import problem_response, problem_responses
from service_kit.problems import problem

router = APIRouter(tags=["sessions"])


class SessionOut(BaseModel):
    id: uuid.UUID
    client_id: str | None
    created_at: datetime
    last_used_at: datetime | None
    current: bool = Field(description="The session of the access token that asks.")


class SessionList(BaseModel):
    items: list[SessionOut]


class AccountDeletionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "correct horse battery"}]}
    )

    password: str = Field(min_length=1, max_length=1024)


@router.get("/sessions", response_model=SessionList)
async def list_sessions(caller: CurrentCaller, db: DbSession) -> SessionList:
    """The caller's live sessions, the most recently used first; `current` marks the one
    of the access token that asks."""
    found = await live_sessions(db, caller.account.id, utcnow())
    return SessionList(
        items=[
            SessionOut(
                id=session.id,
                client_id=session.client_id,
                created_at=session.created_at,
                last_used_at=session.last_used_at,
                current=session.id == caller.claims.session_id,
            )
            for session in found
        ]
    )


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    responses=problem_responses(404),
)
async def revoke_session(
    session_id: uuid.UUID, caller: CurrentCaller, db: DbSession, address: ClientAddress
) -> Response:
    """End one of the caller's live sessions (this one too): its refresh tokens stop
    working, and its access tokens on auth's own endpoints. 404 for any other id."""
    revoked = await credentials.revoke_own_session(
        db, caller.account.id, session_id, client_address=address
    )
    if not revoked:
        raise HTTPException(404, "The caller has no live session with this id.")
    return Response(status_code=204)


@router.delete(
    "/account",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    dependencies=[JsonBody],
    responses={
        403: problem_response(403, "The password is wrong.", headers={}),
        **problem_responses(415, 422, 429),
    },
)
async def delete_account(
    body: AccountDeletionRequest,
    caller: CurrentCaller,
    db: DbSession,
    rules: PasswordRulesDep,
    issuance: IssuanceDep,
    address: ClientAddress,
) -> Response:
    """Erase the caller's account, its password required: every session ends, the account
    is deleted, and the audit trail keeps only ids and event types. The password goes
    through the throttled check a sign-in uses: 403 when wrong, 429 with Retry-After."""
    try:
        await credentials.delete_own_account(
            db,
            issuance.throttle,
            rules,
            caller.account,
            password=body.password,
            client_address=address,
        )
    except ThrottledError as exc:
        return problem(
            429,
            "Too many wrong passwords; try again later.",
            headers={"Retry-After": str(exc.retry_after)},
        )
    except BadCredentialsError:
        return problem(403, "The password is incorrect.")
    return Response(status_code=204)
