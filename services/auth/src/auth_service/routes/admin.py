"""The admin API (role `admin`): find, disable, enable and delete accounts, set their
roles, read the audit trail. Every action is `administration`'s (the CLI's too), audited
with the acting administrator's account id."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from auth_service import admin_listings, administration
from auth_service.accounts import ROLE_PATTERN, AccountNotFoundError, InvalidAccountFieldError
from auth_service.admin_listings import InvalidCursorError
from auth_service.clock import utcnow
from auth_service.dependencies import CurrentAdmin
from auth_service.models import Account, AuditEvent
from auth_service.routes.accounts import JsonBody
from service_kit.db import DbSession
from service_kit.openapi import problem_response, problem_responses

router = APIRouter(prefix="/admin", tags=["admin"])

_NOT_ADMIN = problem_response(403, "The caller does not hold the `admin` role.", headers={})
_PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: _NOT_ADMIN,
    422: problem_response(422, "An invalid parameter, or a `cursor` this listing did not give."),
}
_ACCOUNT_ERRORS: dict[int | str, dict[str, Any]] = {403: _NOT_ADMIN, **problem_responses(404)}
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=200)]


class AdminAccount(BaseModel):
    id: uuid.UUID
    email: str
    username: str | None
    roles: list[str]
    disabled: bool
    email_verified: bool
    created_at: datetime
    updated_at: datetime


class AccountPage(BaseModel):
    items: list[AdminAccount]
    next_cursor: str | None


class AuditEventOut(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    type: str
    account_id: uuid.UUID | None
    client_address: str | None
    client_id: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_cursor: str | None


class RolesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"roles": ["admin"]}]}
    )

    roles: list[Annotated[str, Field(pattern=ROLE_PATTERN)]] = Field(max_length=32)


def _account_out(account: Account) -> AdminAccount:
    return AdminAccount.model_validate(account, from_attributes=True)


def _event_out(event: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        type=event.event,
        account_id=event.account_id,
        client_address=event.client_address,
        client_id=event.client_id,
        details=event.details or {},
    )


def _no_account() -> HTTPException:
    return HTTPException(404, "There is no account with this id.")


@router.get("/accounts", response_model=AccountPage, responses=_PAGE_ERRORS)
async def list_accounts(
    _admin: CurrentAdmin,
    db: DbSession,
    query: Annotated[str | None, Query(max_length=254)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AccountPage:
    """Accounts, oldest first, whose email or username starts with `query` (any case);
    `next_cursor` gives the next page (null on the last)."""
    try:
        page, next_cursor = await admin_listings.accounts_page(
            db, query=query, limit=limit, cursor=cursor
        )
    except InvalidCursorError:
        raise HTTPException(422, "Invalid request: cursor") from None
    return AccountPage(items=[_account_out(account) for account in page], next_cursor=next_cursor)


@router.get("/accounts/{account_id}", response_model=AdminAccount, responses=_ACCOUNT_ERRORS)
async def read_account(account_id: uuid.UUID, _admin: CurrentAdmin, db: DbSession) -> AdminAccount:
    """One account."""
    account = await db.get(Account, account_id)
    if account is None:
        raise _no_account()
    return _account_out(account)


@router.post(
    "/accounts/{account_id}/disable", response_model=AdminAccount, responses=_ACCOUNT_ERRORS
)
async def disable_account(
    account_id: uuid.UUID, admin: CurrentAdmin, db: DbSession
) -> AdminAccount:
    """Refuse the account every sign-in and refresh, and revoke every session of it (its
    access tokens stop working on auth's own endpoints at once). Idempotent."""
    try:
        account = await administration.disable(
            db, account_id, actor=str(admin.account.id), now=utcnow()
        )
    except AccountNotFoundError:
        raise _no_account() from None
    return _account_out(account)


@router.post(
    "/accounts/{account_id}/enable", response_model=AdminAccount, responses=_ACCOUNT_ERRORS
)
async def enable_account(account_id: uuid.UUID, admin: CurrentAdmin, db: DbSession) -> AdminAccount:
    """Let a disabled account sign in again (its revoked sessions stay revoked)."""
    try:
        account = await administration.enable(
            db, account_id, actor=str(admin.account.id), now=utcnow()
        )
    except AccountNotFoundError:
        raise _no_account() from None
    return _account_out(account)


@router.delete(
    "/accounts/{account_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_model=None,
    responses=_ACCOUNT_ERRORS,
)
async def delete_account(account_id: uuid.UUID, admin: CurrentAdmin, db: DbSession) -> Response:
    """Erase the account: every session ends, the account is deleted, and the audit trail
    keeps only ids and event types."""
    try:
        await administration.delete_account(
            db, account_id, actor=str(admin.account.id), now=utcnow()
        )
    except AccountNotFoundError:
        raise _no_account() from None
    return Response(status_code=204)


@router.put(
    "/accounts/{account_id}/roles",
    response_model=AdminAccount,
    dependencies=[JsonBody],
    responses={**_ACCOUNT_ERRORS, **problem_responses(415)},
)
async def set_roles(
    account_id: uuid.UUID, body: RolesRequest, admin: CurrentAdmin, db: DbSession
) -> AdminAccount:
    """Give the account exactly these roles. Tokens carry them from its next sign-in or
    refresh; access tokens already issued keep the old roles until they expire."""
    try:
        account = await administration.set_roles(
            db, account_id, body.roles, actor=str(admin.account.id), now=utcnow()
        )
    except AccountNotFoundError:
        raise _no_account() from None
    except InvalidAccountFieldError as exc:  # the pattern above checks first
        raise HTTPException(422, str(exc)) from None
    return _account_out(account)


@router.get("/audit", response_model=AuditPage, responses=_PAGE_ERRORS)
async def list_audit_events(
    _admin: CurrentAdmin,
    db: DbSession,
    account_id: uuid.UUID | None = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditPage:
    """Audit events, newest first, of one account (`account_id`) and of one type (`type`,
    `login_failed` say) when given; `next_cursor` gives the next page (null on the last)."""
    try:
        page, next_cursor = await admin_listings.audit_page(
            db, account_id=account_id, event=type, limit=limit, cursor=cursor
        )
    except InvalidCursorError:
        raise HTTPException(422, "Invalid request: cursor") from None
    return AuditPage(items=[_event_out(event) for event in page], next_cursor=next_cursor)
