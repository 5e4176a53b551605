"""The operator's commands on signing keys, accounts and clients (`auth-service keys …`,
`accounts …`, `clients …`, `purge`): each parses, calls one operation of `administration`,
`accounts` or `clients` in a database session of its own, and prints.

Imported only when one of them runs, so that `serve` and `healthcheck` start light.
"""

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import accounts, administration, clients, keys, registration
from auth_service.accounts import (
    AccountNotFoundError,
    AccountTakenError,
    InvalidAccountFieldError,
    PasswordRules,
)
from auth_service.clients import (
    ClientExistsError,
    ClientNotFoundError,
    ClientOperationError,
    ClientSecretHasher,
)
from auth_service.clock import utcnow
from auth_service.key_encryption import KeyEncryption
from auth_service.keys import KeyOperationError
from auth_service.main import key_timings, retention_policy
from auth_service.models import SigningKey
from auth_service.passwords import PasswordHasher, PasswordPolicyError
from auth_service.registration import InvalidClientFieldError
from auth_service.settings import Settings
from service_kit.cli import CommandError
from service_kit.db import Database
from service_kit.logging import configure_logging

Handler = Callable[[Database, Settings, argparse.Namespace], Awaitable[None]]


def _actor() -> str:
    """Who ran the command, for the audit trail: `cli`, and the OS user when known."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # a container user without a name
        return "cli"


def _encryption(settings: Settings) -> KeyEncryption:
    return KeyEncryption(settings.key_encryption_key.get_secret_value())


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


async def _keys_list(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    now = utcnow()
    async with database.db_session() as db:
        stored = await db.scalars(select(SigningKey).order_by(SigningKey.sequence))
        rows = [_describe(key, now) for key in stored]
    if args.json:
        print(json.dumps({"keys": rows}, indent=2))
        return
    print(f"{'kid':<44} {'state':<8} {'activates_at':<26} published_until")
    for row in rows:
        until = row["published_until"] or ("-" if row["published"] else "")
        print(f"{row['kid']:<44} {row['state']:<8} {row['activates_at']:<26} {until}")


async def _keys_rotate(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    async with database.db_session() as db:
        key = await administration.rotate_key(
            db, _encryption(settings), key_timings(settings), actor=_actor(), now=utcnow()
        )
    print(f"new key {key.kid}: published now, signs from {key.activates_at.isoformat()}")


async def _keys_retire(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    async with database.db_session() as db:
        key = await administration.retire_key(
            db, args.kid, key_timings(settings), actor=_actor(), now=utcnow()
        )
    until = key.published_until.isoformat() if key.published_until else "now"
    print(f"key {key.kid} retired; published until {until}")


async def _keys_revoke(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    async with database.db_session() as db:
        revocation = await administration.revoke_key(
            db, _encryption(settings), args.kid, actor=_actor(), now=utcnow()
        )
    print(
        f"key {revocation.revoked.kid} revoked: out of the key set, never signing again; "
        f"every replica follows within KEY_REFRESH_SECONDS ({settings.key_refresh_seconds:g} s)"
    )
    if revocation.replacement:
        print(f"key {revocation.replacement.kid} signs from now on")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first: str = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandError("the passwords differ")
    return first


async def _create_admin(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    password = _read_password(args.password_stdin)
    rules = PasswordRules(
        PasswordHasher(settings.bcrypt_cost, settings.hash_threads), settings.password_min_score
    )
    try:
        async with database.db_session() as db:
            account = await accounts.register(
                db,
                rules,
                email=args.email,
                password=password,
                username=args.username,
                now=utcnow(),
                roles=("admin",),
                actor=_actor(),
            )
    except AccountTakenError as exc:
        raise CommandError(
            f"that {exc.field} is already registered; use `accounts grant-role` instead"
        ) from exc
    print(f"admin account {account.id} created for {account.email}")


async def _account_action(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    try:
        async with database.db_session() as db:
            account_id = (await administration.find_account(db, args.login)).id
            if args.action == "disable":
                account = await administration.disable(db, account_id, actor=_actor(), now=utcnow())
                print(f"{account.email} disabled; every session revoked")
            elif args.action == "enable":
                account = await administration.enable(db, account_id, actor=_actor(), now=utcnow())
                print(f"{account.email} enabled")
            elif args.action == "delete":
                await administration.delete_account(db, account_id, actor=_actor(), now=utcnow())
                print(f"account {account_id} deleted; every session ended")
            else:
                change = (
                    administration.grant_role
                    if args.action == "grant-role"
                    else administration.revoke_role
                )
                account = await change(db, account_id, args.role, actor=_actor(), now=utcnow())
                print(f"{account.email} now has roles: {', '.join(account.roles) or '(none)'}")
    except AccountNotFoundError as exc:
        raise CommandError(f"no account with id, email or username {args.login!r}") from exc


async def _purge(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    purged = await administration.purge(
        database, retention_policy(settings), actor=_actor(), now=utcnow()
    )
    print(json.dumps(purged.as_dict()))


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


def _read_jwks(path: str | None) -> Any:
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CommandError(f"{path} is not JSON: {exc}") from exc


def _secret_hasher(settings: Settings) -> ClientSecretHasher:
    return ClientSecretHasher(settings.key_encryption_key.get_secret_value())


async def _clients_create(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    try:
        checked = registration.registration(
            args.client_id,
            args.type,
            grant_types=args.grant_types,
            scopes=args.scopes,
            redirect_uris=args.redirect_uris,
            audiences=args.audiences,
            jwks=_read_jwks(args.jwks_file),
            access_token_ttl_seconds=args.access_token_ttl,
            first_party=args.first_party,
            existing_scopes=settings.scope_set,
            default_scopes=settings.default_client_scope_set,
            max_access_token_ttl_seconds=settings.access_token_ttl_seconds,
        )
        now = utcnow()
        async with database.db_session() as db:
            created = await clients.create(
                db, checked, _secret_hasher(settings), actor=_actor(), now=now
            )
            described = await clients.find(db, created.client.id, now)
    except InvalidClientFieldError as exc:
        raise CommandError(f"{exc.field}: {exc}") from exc
    except ClientExistsError as exc:
        raise CommandError(f"a client with id {args.client_id!r} already exists") from exc
    secret = {"client_secret": created.secret} if created.secret else {}
    _print_json({"client_id": created.client.id, **secret, **described})


async def _clients_list(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    async with database.db_session() as db:
        listed = await clients.list_all(db, utcnow())
    _print_json({"clients": listed})


async def _client_action(database: Database, settings: Settings, args: argparse.Namespace) -> None:
    now = utcnow()
    try:
        async with database.db_session() as db:
            await _one_client_action(db, settings, args, now)
    except ClientNotFoundError as exc:
        raise CommandError(f"no client with id {args.client_id!r}") from exc
    except ClientOperationError as exc:
        raise CommandError(str(exc)) from exc


async def _one_client_action(
    db: AsyncSession, settings: Settings, args: argparse.Namespace, now: datetime
) -> None:
    if args.action == "show":
        _print_json(await clients.find(db, args.client_id, now))
    elif args.action == "rotate-secret":
        rotation = await clients.rotate_secret(
            db,
            args.client_id,
            _secret_hasher(settings),
            timedelta(seconds=settings.client_secret_rotation_grace_seconds),
            actor=_actor(),
            now=now,
        )
        expires = rotation.previous_expires_at
        _print_json(
            {
                "client_id": rotation.client.id,
                "client_secret": rotation.secret,
                "previous_secret_expires_at": expires.isoformat() if expires else None,
            }
        )
    else:
        revoked = await clients.delete_client(
            db,
            args.client_id,
            default_client_id=settings.default_client_id,
            actor=_actor(),
            now=now,
        )
        _print_json({"client_id": args.client_id, "deleted": True, "sessions_revoked": revoked})


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
    ("accounts", "delete"): _account_action,
    ("clients", "create"): _clients_create,
    ("clients", "list"): _clients_list,
    ("clients", "show"): _client_action,
    ("clients", "rotate-secret"): _client_action,
    ("clients", "delete"): _client_action,
    ("purge", None): _purge,
}


async def _with_database(settings: Settings, args: argparse.Namespace, handler: Handler) -> None:
    database = Database(settings.database_url)
    try:
        await handler(database, settings, args)
    except (KeyOperationError, InvalidAccountFieldError, PasswordPolicyError) as exc:
        raise CommandError(str(exc)) from exc
    finally:
        await database.dispose()


def run(args: argparse.Namespace) -> None:
    """Run the command `args` names; raise `CommandError` on refusal."""
    if args.command == "keys" and args.action == "generate-kek":
        # Before the settings: an operator replacing a refused key must be able to run it.
        from auth_service import kek

        print(kek.generate())
        return
    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    handler = HANDLERS[(args.command, getattr(args, "action", None))]
    asyncio.run(_with_database(settings, args, handler))
