"""The one source of "now" for every rule that depends on time."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """An aware UTC datetime."""
    return datetime.now(UTC)
