"""The auth service's events, read as deny-list entries: how a service learns of revocations.

The auth service publishes, at least once and in order per account (docs/events.md):
`session.revoked` (`session_id` set), `account.disabled`, `account.enabled` and
`account.deleted`, each a JSON object with `id`, `type`, `account_id`, `session_id`,
`occurred_at` (ISO 8601) and `data`. `revocation_of` says what one means for a `DenyList`;
`apply_event` applies it:

    for event in batch["events"]:
        apply_event(verifier.deny_list, event, max_token_lifetime_seconds=900 + 10)

An entry lasts from the event until every token it could match has expired by itself:
`max_token_lifetime_seconds` is the longest access-token lifetime the auth service issues
(ACCESS_TOKEN_TTL_SECONDS) plus the verifier's clock leeway. Events of other types mean
nothing here (None).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from auth_client.deny_list import DenyList

SESSION_REVOKED = "session.revoked"
ACCOUNT_DISABLED = "account.disabled"
ACCOUNT_ENABLED = "account.enabled"
ACCOUNT_DELETED = "account.deleted"

T = TypeVar("T")


class InvalidEventError(ValueError):
    """An event of a revoking type without the fields it needs."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """A deny-list change: refuse `kind` `key` until `until` (seconds since the epoch), or,
    `lifted`, take the subject off the list (an account enabled again)."""

    kind: Literal["session", "subject"]
    key: str
    until: float
    lifted: bool = False


def revocation_of(
    event: Mapping[str, Any], *, max_token_lifetime_seconds: float
) -> Revocation | None:
    """What an event means for a deny list, or None; `InvalidEventError` if it is malformed."""
    kind = event.get("type")
    if kind not in (SESSION_REVOKED, ACCOUNT_DISABLED, ACCOUNT_ENABLED, ACCOUNT_DELETED):
        return None
    moment = _field(event, "occurred_at", datetime.fromisoformat)
    if moment.tzinfo is None:
        raise InvalidEventError(f"{kind} event whose occurred_at has no time zone")
    until = moment.timestamp() + max_token_lifetime_seconds
    if kind == SESSION_REVOKED:
        return Revocation("session", _field(event, "session_id", _identifier), until)
    account = _field(event, "account_id", _identifier)
    return Revocation("subject", account, until, lifted=kind == ACCOUNT_ENABLED)


def _field(event: Mapping[str, Any], name: str, parse: Callable[[Any], T]) -> T:
    try:
        return parse(event[name])
    except (KeyError, TypeError, ValueError):
        raise InvalidEventError(f"{event.get('type')} event without a usable {name}") from None


def _identifier(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValueError(value)
    return value


def apply(deny_list: DenyList, revocation: Revocation) -> None:
    """Put the revocation on the list (or lift it)."""
    if revocation.lifted:
        deny_list.allow_subject(revocation.key)
    elif revocation.kind == "session":
        deny_list.deny_session(revocation.key, until=revocation.until)
    else:
        deny_list.deny_subject(revocation.key, until=revocation.until)


def apply_event(
    deny_list: DenyList, event: Mapping[str, Any], *, max_token_lifetime_seconds: float
) -> Revocation | None:
    """Apply one event to the list; what it meant (None: nothing)."""
    revocation = revocation_of(event, max_token_lifetime_seconds=max_token_lifetime_seconds)
    if revocation is not None:
        apply(deny_list, revocation)
    return revocation
