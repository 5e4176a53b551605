"""The operator's commands on signing keys, accounts and clients (`auth-service keys …`,
`accounts …`, `clients …`). They parse and print; the operations live in `keys`,
`administration` and `clients`.

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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service import accounts, administration, audit, clients, keys, registration, retention
from auth_service.accounts import (
    AccountNotFoundError,
    AccountTakenError,
    InvalidAccountFieldError,
    PasswordRules,
)
from auth_service.audit import Event
from auth_service.clients import (
    ClientExistsError,
    ClientNotFoundError,
    ClientOperationError,
    ClientSecretHasher,
)
from auth_service.clock import utcnow
from auth_service.db import Database
from auth_service.keys import KeyEncryption, KeyOperationError
from auth_service.main import key_timings, retention_policy
from auth_service.models import SigningKey
from auth_service.passwords import PasswordHasher, PasswordPolicyError
from auth_service.registration import InvalidClientFieldError
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


async def _clients_create(
    session: AsyncSession, settings: Settings, args: argparse.Namespace
) -> None:
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
        created = await clients.create(
            session, checked, _secret_hasher(settings), actor=_actor(), now=now
        )
        described = await clients.find(session, created.client.id, now)
    except InvalidClientFieldError as exc:
        raise CommandError(f"{exc.field}: {exc}") from exc
    except ClientExistsError as exc:
        raise CommandError(f"a client with id {args.client_id!r} already exists") from exc
    secret = {"client_secret": created.secret} if created.secret else {}
    _print_json({"client_id": created.client.id, **secret, **described})


async def _clients_list(
    session: AsyncSession, settings: Settings, args: argparse.Namespace
) -> None:
    _print_json({"clients": await clients.list_all(session, utcnow())})


async def _client_action(
    session: AsyncSession, settings: Settings, args: argparse.Namespace
) -> None:
    now = utcnow()
    try:
        if args.action == "show":
            _print_json(await clients.find(session, args.client_id, now))
        elif args.action == "rotate-secret":
            rotation = await clients.rotate_secret(
                session,
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
                session,
                args.client_id,
                default_client_id=settings.default_client_id,
                actor=_actor(),
                now=now,
            )
            _print_json({"client_id": args.client_id, "deleted": True, "sessions_revoked": revoked})
    except ClientNotFoundError as exc:
        raise CommandError(f"no client with id {args.client_id!r}") from exc
    except ClientOperationError as exc:
        raise CommandError(str(exc)) from exc


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
    ("clients", "create"): _clients_create,
    ("clients", "list"): _clients_list,
    ("clients", "show"): _client_action,
    ("clients", "rotate-secret"): _client_action,
    ("clients", "delete"): _client_action,
    ("purge", None): _purge,
}


def run(settings: Settings, args: argparse.Namespace) -> None:
    """Run the command `args` names against the database; raise `CommandError` on refusal."""
    handler = HANDLERS[(args.command, getattr(args, "action", None))]
    asyncio.run(_with_database(settings, args, handler))
