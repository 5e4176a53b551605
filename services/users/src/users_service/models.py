"""The users service's tables, as SQLAlchemy 2.0 typed models."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, Index, MetaData, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service_kit.schema import NAMING_CONVENTION, UtcDateTime

DISPLAY_NAME_MAX_LENGTH = 100
BIO_MAX_LENGTH = 500
AVATAR_URL_MAX_LENGTH = 2048


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Profile(Base):
    """A person's public face, keyed by their account's id in the auth service.

    No foreign key: the accounts live in the auth service's database. A profile appears on
    the account's first `GET /users/me`.
    """

    __tablename__ = "profiles"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(DISPLAY_NAME_MAX_LENGTH))
    bio: Mapped[str | None] = mapped_column(String(BIO_MAX_LENGTH))
    avatar_url: Mapped[str | None] = mapped_column(String(AVATAR_URL_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)

    # The admin listing pages through profiles in this order.
    __table_args__ = (Index("ix_profiles_created_at_id", "created_at", "id"),)


class ProcessedEvent(Base):
    """An event from the auth service already applied: a second delivery changes nothing."""

    __tablename__ = "processed_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True)
    # Indexed for the purge of the oldest ids.
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class DenyEntry(Base):
    """A session (`sid`) or an account (`sub`) whose access tokens are refused until
    `expires_at`, when the last of them has expired by itself. Every replica loads these
    into its verifier's deny list (`revocations.py`)."""

    __tablename__ = "deny_entries"
    __table_args__ = (CheckConstraint("kind IN ('session', 'subject')", name="kind"),)

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
