"""Accounts: registration, and what makes an email, a username or a role valid and how an
account is found by its login.

`register` is an operation (it commits); the rest never write.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import audit, events
from auth_service.audit import Event
from auth_service.events import EventType
from auth_service.models import Account
from auth_service.passwords import PasswordHasher

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
ROLE_PATTERN = r"^[a-z][a-z0-9_:-]{0,31}$"
_USERNAME = re.compile(USERNAME_PATTERN)
_MAX_LOGIN_CHARS = 254
_ROLE = re.compile(ROLE_PATTERN)


class AccountTakenError(Exception):
    """The email or the username is taken; `field` says which."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is already registered")
        self.field = field


class InvalidAccountFieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AccountNotFoundError(LookupError):
    """No account has that id, email or username."""


@dataclass(frozen=True)
class PasswordRules:
    """How new passwords are hashed, and the lowest zxcvbn score one may have."""

    hasher: PasswordHasher
    min_score: int


def canonical_email(email: str) -> str:
    """The address as email-validator normalises it (no deliverability check)."""
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidAccountFieldError("email", str(exc)) from exc


def check_username(username: str) -> str:
    if not _USERNAME.fullmatch(username):
        raise InvalidAccountFieldError(
            "username",
            "A username is 3-32 characters: letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
        )
    return username


def check_role(role: str) -> str:
    if not _ROLE.fullmatch(role):
        raise InvalidAccountFieldError(
            "role", "A role is 1-32 lowercase letters, digits, '_', ':' or '-'."
        )
    return role


def normalize_login(login: str) -> str:
    """How an email or username is compared, and throttled: stripped, case-folded, and an
    email in its canonical form. Whether an account has that name plays no part."""
    stripped = login.strip()
    if "@" in stripped and len(stripped) <= _MAX_LOGIN_CHARS:
        try:
            return canonical_email(stripped).casefold()
        except InvalidAccountFieldError:
            pass
    return stripped.casefold()


async def find_by_login(db: AsyncSession, login: str) -> Account | None:
    """The account whose email or username is `login`, case-insensitively."""
    key = normalize_login(login)
    if not key or len(key) > _MAX_LOGIN_CHARS:
        return None
    column = Account.email_key if "@" in key else Account.username_key
    return await db.scalar(select(Account).where(column == key))


async def register(
    db: AsyncSession,
    rules: PasswordRules,
    *,
    email: str,
    password: str,
    username: str | None,
    now: datetime,
    roles: tuple[str, ...] = (),
    client_address: str | None = None,
    actor: str | None = None,
) -> Account:
    """Create an account (with `roles`, each audited as granted by `actor`) and commit;
    `AccountTakenError` when the email or username is taken.

    Raises `InvalidAccountFieldError` or `PasswordPolicyError` before touching the database,
    `PasswordWorkBusyError` (nothing written) when the hashing queue is full.
    """
    email = canonical_email(email)
    if username is not None:
        username = check_username(username)
    await rules.hasher.check_policy(
        password, personal=[email, username or ""], min_score=rules.min_score
    )
    email_key, username_key = email.casefold(), username.casefold() if username else None
    await _refuse_taken(db, email_key, username_key)
    # The check above ends its read, so that no connection is held while hashing.
    await db.rollback()
    with rules.hasher.admission():  # PasswordWorkBusyError when the hashing queue is full
        password_hash = await rules.hasher.hash(password)
    account = Account(
        id=uuid.uuid4(),
        email=email,
        email_key=email_key,
        username=username,
        username_key=username_key,
        password_hash=password_hash,
        roles=sorted(set(roles)),
        disabled=False,
        created_at=now,
        updated_at=now,
        password_changed_at=now,
    )
    db.add(account)
    details = {"actor": actor} if actor else {}
    audit.record(
        db,
        Event.REGISTERED,
        now=now,
        account_id=account.id,
        client_address=client_address,
        **details,
    )
    for role in account.roles:
        audit.record(db, Event.ROLE_GRANTED, now=now, account_id=account.id, role=role, **details)
    try:
        # Flushes the account first: a race for its email or username fails here.
        await events.publish(db, EventType.ACCOUNT_CREATED, account_id=account.id, now=now)
        await db.commit()
    except IntegrityError:
        # Someone registered the same email or username since the check above.
        await db.rollback()
        await _refuse_taken(db, email_key, username_key)
        raise AccountTakenError("email") from None
    return account


async def _refuse_taken(db: AsyncSession, email_key: str, username_key: str | None) -> None:
    conditions = [Account.email_key == email_key]
    if username_key is not None:
        conditions.append(Account.username_key == username_key)
    taken = (
        await db.execute(select(Account.email_key, Account.username_key).where(or_(*conditions)))
    ).all()
    for taken_email, _ in taken:
        if taken_email == email_key:
            raise AccountTakenError("email")
    if taken:
        raise AccountTakenError("username")
