"""The auth service's tables, as SQLAlchemy 2.0 typed models.

Times are timezone-aware UTC on the way in and out (`UtcDateTime`), whatever the backend.
"""

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service_kit.schema import NAMING_CONVENTION, UtcDateTime


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime}


class Account(Base):
    """Someone who can sign in. Email and username are unique case-insensitively."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254))
    # The case-folded email and username carry the uniqueness; the others keep the spelling.
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str | None] = mapped_column(String(32))
    username_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(60))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by a verification link mailed to `email` (`email_tokens.verify_email`).
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    password_changed_at: Mapped[datetime]


class SignInSession(Base):
    """One sign-in (the API's session, `sid`): the chain of refresh tokens that continue it,
    revoked as a whole. The table keeps its first name, from RFC 9700's "token family"."""

    __tablename__ = "session_families"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime]
    # When a refresh token of it was last spent (its start, until then); shown to its owner.
    last_used_at: Mapped[datetime | None]
    # Indexed for the retention purge, which deletes sessions ended long enough ago.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(index=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32))
    # `token`: a client's session (refresh tokens). `browser`: the hosted sign-in page's
    # session, named by a cookie whose SHA-256 is `cookie_hash`; it issues authorization
    # codes, never tokens, and its `created_at` is the `auth_time` of what it issues.
    kind: Mapped[str] = mapped_column(String(8), server_default="token")
    cookie_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True, index=True)


class AuthorizationCode(Base):
    """An authorization code (RFC 6749 §4.1) and the request it answers; only its SHA-256 is
    stored. Spent by one compare-and-set on `used_at`; a second use revokes the session
    the first one started (`issued_session_id`)."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    code_challenge: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(1024))
    nonce: Mapped[str | None] = mapped_column(String(512))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # The browser sign-in session it came from (`auth_time` is that session's start).
    browser_session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("session_families.id", ondelete="CASCADE")
    )
    auth_time: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the retention purge
    used_at: Mapped[datetime | None]
    # The client's session its exchange started: revoked if the code is replayed.
    issued_session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("session_families.id", ondelete="SET NULL")
    )


class RefreshToken(Base):
    """One refresh token of a sign-in session; only its SHA-256 is stored."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # The sign-in session (its token family) it continues.
    family_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("session_families.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refresh_tokens.id", ondelete="SET NULL")
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the retention purge
    used_at: Mapped[datetime | None]


class SigningKey(Base):
    """An RS256 key pair; the private half encrypted (AES-GCM) under the key-encryption key.

    `sequence` is unique, so two replicas (or two rotations) that race to add a key cannot
    both succeed: the loser's insert fails and it reloads what the winner wrote.
    """

    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint("state IN ('next', 'active', 'retired', 'revoked')", name="state"),
    )

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer, unique=True)
    state: Mapped[str] = mapped_column(String(8))
    public_jwk: Mapped[dict[str, str]] = mapped_column(JSON)
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    # A `next` key signs from then on; published from creation.
    activates_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]
    # Published in the key set until then: the last token it signed has expired by then.
    published_until: Mapped[datetime | None]


class LoginThrottle(Base):
    """Sign-in attempts counted per login name, per client address and per both, shared by
    every replica (`throttling.py`). An attempt counts as a failure from its reservation
    until a correct password releases it."""

    __tablename__ = "login_throttles"

    # `login:<sha256>`, `pair:<sha256>` or `address:<ip or /64>`.
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)  # the retention purge
    blocked_until: Mapped[datetime | None]


class Client(Base):
    """A registered OAuth client (RFC 6749 §2): what it may ask for, and how it proves itself.

    Grant types and scopes are space-separated and sorted, as OAuth writes scopes, so the
    default client's start-up upsert compares them as plain strings on every backend.
    """

    __tablename__ = "clients"
    __table_args__ = (CheckConstraint("type IN ('public', 'confidential')", name="type"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    grant_types: Mapped[str] = mapped_column(String(256))
    scopes: Mapped[str] = mapped_column(String(1024))
    # The `aud` values its access tokens may carry (the first by default; RFC 8707 picks).
    audiences: Mapped[list[str]] = mapped_column(JSON)
    # Exact strings: a redirect must equal one of them, character for character.
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    # Public keys for private_key_jwt (RFC 7523); such a client has no secret.
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # Shorter access tokens than ACCESS_TOKEN_TTL_SECONDS for this client (never longer).
    access_token_ttl_seconds: Mapped[int | None] = mapped_column(Integer)
    # A client of the platform itself (its own apps), as opposed to another party's.
    first_party: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ClientSecret(Base):
    """A confidential client's secret, as an HMAC-SHA256 under a key derived from the
    key-encryption key. `expires_at` is None for the current secret; a rotation gives the
    previous one a grace period, so at most two are live at a time."""

    __tablename__ = "client_secrets"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)  # the retention purge


class UsedClientAssertion(Base):
    """The `jti` of every client assertion (RFC 7523) accepted and not yet expired: the
    primary key makes a second use fail, atomically, whichever replica sees it."""

    __tablename__ = "used_client_assertions"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the retention purge


class AuditEvent(Base):
    """A security event. Never holds a password, a token or a hash of one."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_account_id_occurred_at", "account_id", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    client_address: Mapped[str | None] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EmailToken(Base):
    """A single-use token mailed to an account's address: to verify it, or to reset the
    password. Only its SHA-256 is stored; `used_at` is set by the compare-and-set that
    spends it."""

    __tablename__ = "email_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose"),
    )

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the retention purge
    used_at: Mapped[datetime | None]


class MailMessage(Base):
    """A message of the mail outbox, written in the transaction of the change that causes
    it and sent by the delivery worker (`mail_delivery`), which claims it first."""

    __tablename__ = "mail_outbox"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    recipient: Mapped[str] = mapped_column(String(254))
    # Subject and bodies, sealed under KEY_ENCRYPTION_KEY (they may carry a single-use
    # token); erased once the message is sent or given up on.
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(index=True)  # the retention purge
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is due next; None once sent or given up on (the worker's index).
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    # A worker's claim: no other sends it before then.
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
