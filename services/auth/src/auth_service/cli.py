"""`auth-service`: serve the API, manage its database, its signing keys and its accounts.

auth-service keys list [--json]
auth-service keys rotate            # a `next` key, signing after KEY_PUBLISH_DELAY_SECONDS
auth-service keys retire KID
auth-service accounts create-admin --email EMAIL [--username NAME] --password-stdin
auth-service accounts grant-role EMAIL_OR_USERNAME ROLE
"""

import argparse
import asyncio
import getpass
import json
import sys
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import accounts, audit, keys, migrations
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
from auth_service.main import key_timings
from auth_service.models import SigningKey
from auth_service.passwords import PasswordHasher, PasswordPolicyError
from auth_service.settings import Settings
from service_kit.logging import configure_logging


class CommandError(Exception):
    """A command could not do what was asked; printed, exit status 1."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="auth-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    migrate = commands.add_parser("migrate", help="upgrade the database to a revision")
    migrate.add_argument("revision", nargs="?", default="head")
    downgrade = commands.add_parser("downgrade", help="downgrade the database to a revision")
    downgrade.add_argument("revision")
    commands.add_parser(
        "healthcheck", help="exit 0 when this service's /health answers (container probes)"
    )
    key_commands = commands.add_parser("keys", help="list, rotate and retire signing keys")
    key_actions = key_commands.add_subparsers(dest="action", required=True)
    key_list = key_actions.add_parser("list", help="every key, its state and its times")
    key_list.add_argument("--json", action="store_true", help="one JSON document")
    key_actions.add_parser(
        "rotate", help="add a `next` key: published now, signing once the publish delay is over"
    )
    key_retire = key_actions.add_parser(
        "retire", help="retire a key (stays published until its tokens have expired)"
    )
    key_retire.add_argument("kid")
    account_commands = commands.add_parser("accounts", help="create an admin, grant a role")
    account_actions = account_commands.add_subparsers(dest="action", required=True)
    create_admin = account_actions.add_parser("create-admin", help="an account with role admin")
    create_admin.add_argument("--email", required=True)
    create_admin.add_argument("--username")
    create_admin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else it is prompted for)",
    )
    grant = account_actions.add_parser("grant-role", help="add a role to an account")
    grant.add_argument("login", help="email or username")
    grant.add_argument("role")
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command != "healthcheck":
        configure_logging("auth", settings.log_level)

    if args.command == "serve":
        uvicorn.run(
            "auth_service.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
            server_header=False,
        )
    elif args.command == "migrate":
        migrations.upgrade(settings.database_url, args.revision)
    elif args.command == "downgrade":
        migrations.downgrade(settings.database_url, args.revision)
    elif args.command == "healthcheck":
        sys.exit(0 if _healthy(settings) else 1)
    else:
        handler = {
            ("keys", "list"): _keys_list,
            ("keys", "rotate"): _keys_rotate,
            ("keys", "retire"): _keys_retire,
            ("accounts", "create-admin"): _create_admin,
            ("accounts", "grant-role"): _grant_role,
        }[(args.command, args.action)]
        try:
            asyncio.run(_with_database(settings, args, handler))
        except CommandError as exc:
            print(f"auth-service: {exc}", file=sys.stderr)
            sys.exit(1)


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


def _healthy(settings: Settings) -> bool:
    # Containers have no curl; this probe is the service's own, on its own port.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    url = f"http://{host}:{settings.port}/auth/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False
