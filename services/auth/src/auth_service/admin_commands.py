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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import accounts, administration, audit, keys, retention
from auth_service.accounts import (
    AccountNotFoundError,
    AccountTakenError,
    InvalidAccountFieldError,
    PasswordRules,
)
from auth_service.audit import Event
from auth_service.clock import utcnow
from auth_service.db import Database
from auth_service.keys import KeyEncryption, KeyOperationError
from auth_service.main import key_timings, retention_policy
from auth_service.models import SigningKey
from auth_service.passwords import PasswordHasher, PasswordPolicyError
from auth_service.settings import Settings


class CommandError(Exception):
    """A command could not do what was asked; printed, exit status 1."""


Handler = Callable[[AsyncSession, Settings, argparse.Namespace], Awaitable[None]]


async def _with_database(settings: Settings, args: argparse.Namespace, handler: Handler) -> None:
    database = Database(settings.database_url)
    try:
        async with database.sessions() as session:
            await handler(session, settings, args)
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


def _actor() -> str:
    """Who ran the command, for the audit trail: `cli`, and the OS user when known."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # a container user without a name
        return "cli"


def _encryption(settings: Settings) -> KeyEncryption:
    return KeyEncryption(settings.key_encryption_key.get_secret_value())


async def _keys_rotate(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    try:
        key = await keys.rotate(session, _encryption(settings), key_timings(settings))
    except KeyOperationError as exc:
        raise CommandError(str(exc)) from exc
    audit.record(session, Event.KEY_ROTATED, now=utcnow(), kid=key.kid, actor=_actor())
    await session.commit()
    print(f"new key {key.kid}: published now, signs from {key.activates_at.isoformat()}")


async def _keys_retire(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    try:
        key = await keys.retire(session, args.kid, key_timings(settings))
    except KeyOperationError as exc:
        raise CommandError(str(exc)) from exc
    audit.record(session, Event.KEY_RETIRED, now=utcnow(), kid=key.kid, actor=_actor())
    await session.commit()
    until = key.published_until.isoformat() if key.published_until else "now"
    print(f"key {key.kid} retired; published until {until}")


async def _keys_revoke(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    now = utcnow()
    try:
        revocation = await keys.revoke(session, _encryption(settings), args.kid, now)
    except KeyOperationError as exc:
        raise CommandError(str(exc)) from exc
    replacement = revocation.replacement.kid if revocation.replacement else None
    audit.record(
        session,
        Event.KEY_REVOKED,
        now=now,
        kid=revocation.revoked.kid,
        replacement=replacement,
        actor=_actor(),
    )
    await session.commit()
    print(
        f"key {revocation.revoked.kid} revoked: out of the key set, never signing again; "
        f"every replica follows within KEY_REFRESH_SECONDS ({settings.key_refresh_seconds:g} s)"
    )
    if replacement:
        print(f"key {replacement} signs from now on")


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
    audit.record(
        session,
        Event.ROLE_GRANTED,
        now=utcnow(),
        account_id=account.id,
        role="admin",
        actor=_actor(),
    )
    await session.commit()
    print(f"admin account {account.id} created for {account.email}")


async def _account_action(
    session: AsyncSession, settings: Settings, args: argparse.Namespace
) -> None:
    try:
        account = await administration.find_account(session, args.login)
        if args.action == "disable":
            account = await administration.disable(
                session, account.id, actor=_actor(), now=utcnow()
            )
            print(f"{account.email} disabled; every session revoked")
        elif args.action == "enable":
            account = await administration.enable(session, account.id, actor=_actor(), now=utcnow())
            print(f"{account.email} enabled")
        else:
            change = (
                administration.grant_role
                if args.action == "grant-role"
                else administration.revoke_role
            )
            account = await change(session, account.id, args.role, actor=_actor(), now=utcnow())
            print(f"{account.email} now has roles: {', '.join(account.roles) or '(none)'}")
    except InvalidAccountFieldError as exc:
        raise CommandError(str(exc)) from exc
    except AccountNotFoundError as exc:
        raise CommandError(f"no account with id, email or username {args.login!r}") from exc


async def _purge(session: AsyncSession, settings: Settings, args: argparse.Namespace) -> None:
    now = utcnow()
    # Batches commit one by one, each in a session of its own on the same engine.
    batches = async_sessionmaker(session.bind, expire_on_commit=False)
    purged = await retention.purge(batches, retention_policy(settings), now)
    audit.record(session, Event.DATA_PURGED, now=now, actor=_actor(), **purged.as_dict())
    await session.commit()
    print(json.dumps(purged.as_dict()))


HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("keys", "list"): _keys_list,
    ("keys", "rotate"): _keys_rotate,
    ("keys", "retire"): _keys_retire,
    ("keys", "revoke"): _keys_revoke,
    ("accounts", "create-admin"): _create_admin,
    ("accounts", "grant-role"): _account_action,
    ("accounts", "revoke-role"): _account_action,
    ("accounts", "disable"): _account_action,
    ("accounts", "enable"): _account_action,
    ("purge", None): _purge,
}


def run(settings: Settings, args: argparse.Namespace) -> None:
    """Run the command `args` names against the database; raise `CommandError` on refusal."""
    handler = HANDLERS[(args.command, getattr(args, "action", None))]
    asyncio.run(_with_database(settings, args, handler))
