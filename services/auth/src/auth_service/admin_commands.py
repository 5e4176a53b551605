"""The operator's commands on signing keys and accounts (`auth-service keys …`, `accounts …`).

Imported only when one of them runs, so that `serve` and `healthcheck` start light.
"""

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import accounts, audit, keys
from auth_service.accounts import (
    AccountNotFoundError,
    AccountTakenError,
    InvalidAccountFieldError,
    PasswordRules,
)
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.keys import KeyEncryption, KeyOperationError
from auth_service.main import key_timings
from auth_service.models import SigningKey
from auth_service.passwords import PasswordHasher, PasswordPolicyError
from auth_service.settings import Settings
from service_kit.cli import CommandError
from service_kit.db import Database
from service_kit.logging import configure_logging

Handler = Callable[[AsyncSession, Settings, argparse.Namespace], Awaitable[None]]


async def _with_database(settings: Settings, args: argparse.Namespace, handler: Handler) -> None:
    database = Database(settings.database_url)
    try:
        async with database.db_session() as db:
            await handler(db, settings, args)
    finally:
        await database.dispose()


def _describe(key: SigningKey, now: datetime) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "kid": key.kid,
        "state": keys.effective_state(key, now),
        "published": keys.is_published(key, now),
        "created_at": iso(key.created_at),
        "activates_at": iso(key.activates_at),
        "retired_at": iso(key.retired_at),
        "published_until": iso(key.published_until),
    }


async def _keys_list(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    now = utcnow()
    rows = [
        _describe(key, now)
        for key in await session.scalars(select(SigningKey).order_by(SigningKey.sequence))
    ]
    if args.json:
        print(json.dumps({"keys": rows}, indent=2))
        return
    print(f"{'kid':<44} {'state':<8} {'activates_at':<26} published_until")
    for row in rows:
        until = row["published_until"] or ("-" if row["published"] else "")
        print(f"{row['kid']:<44} {row['state']:<8} {row['activates_at']:<26} {until}")


async def _keys_rotate(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    encryption = KeyEncryption(settings.key_encryption_key.get_secret_value())
    timings = key_timings(settings)
    try:
        key = await keys.rotate(session, encryption, timings)
    except KeyOperationError as exc:
        raise CommandError(str(exc)) from exc
    audit.record(session, Event.KEY_ROTATED, now=utcnow(), kid=key.kid)
    await session.commit()
    print(f"new key {key.kid}: published now, signs from {key.activates_at.isoformat()}")


async def _keys_retire(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    try:
        key = await keys.retire(session, args.kid, key_timings(settings))
    except KeyOperationError as exc:
        raise CommandError(str(exc)) from exc
    audit.record(session, Event.KEY_RETIRED, now=utcnow(), kid=key.kid)
    await session.commit()
    until = key.published_until.isoformat() if key.published_until else "now"
    print(f"key {key.kid} retired; published until {until}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first: str = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the passwords differ")
    return first


async def _create_admin(
    session: AsyncSession, settings: Settings, args: argparse.Namespace
) -> None:
    password = _read_password(args.password_stdin)
    rules = PasswordRules(
        PasswordHasher(settings.bcrypt_cost, settings.hash_threads), settings.password_min_score
    )
    try:
        account = await accounts.register(
            session,
            rules,
            email=args.email,
            password=password,
            username=args.username,
            now=utcnow(),
            roles=["admin"],
        )
    except (InvalidAccountFieldError, PasswordPolicyError) as exc:
        raise CommandError(str(exc)) from exc
    except AccountTakenError as exc:
        raise CommandError(
            f"that {exc.field} is already registered; use `accounts grant-role` instead"
        ) from exc
    print(f"admin account {account.id} created for {account.email}")


async def _grant_role(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    try:
        account = await accounts.grant_role(session, args.login, args.role, utcnow())
    except InvalidAccountFieldError as exc:
        raise CommandError(str(exc)) from exc
    except AccountNotFoundError as exc:
        raise CommandError(f"no account with email or username {args.login!r}") from exc
    print(f"{account.email} now has roles: {', '.join(account.roles)}")


HANDLERS: dict[tuple[str, str], Handler] = {
    ("keys", "list"): _keys_list,
    ("keys", "rotate"): _keys_rotate,
    ("keys", "retire"): _keys_retire,
    ("accounts", "create-admin"): _create_admin,
    ("accounts", "grant-role"): _grant_role,
}


def run(args: argparse.Namespace) -> None:
    """Run the command `args` names against the database; raise `CommandError` on refusal."""
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    asyncio.run(_with_database(settings, args, HANDLERS[(args.command, args.action)]))
