"""The auth service's events as deny-list entries: which tokens each one refuses, how long."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from auth_client import DenyList, InvalidEventError, Principal, apply_event, revocation_of
from testsupport.tokens import FakeClock

LIFETIME = 910.0
NOW = 1_900_000_000.0


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "account_id": "acct",
        "session_id": None,
        "occurred_at": datetime.fromtimestamp(NOW, UTC).isoformat(),
        "data": {},
        **fields,
    }


def principal(subject: str = "acct", session: str | None = "sess") -> Principal:
    return Principal(
        subject=subject,
        client_id="public",
        scopes=frozenset(),
        roles=frozenset(),
        session_id=session,
        expires_at=int(NOW) + 900,
        issued_at=int(NOW) - 10,
        token_id="t",
        key_id="k",
    )


def test_each_revoking_event_denies_its_session_or_account_for_one_token_lifetime() -> None:
    clock = FakeClock(NOW)
    deny_list = DenyList(clock=clock)
    apply_event(
        deny_list, event("session.revoked", session_id="sess"), max_token_lifetime_seconds=LIFETIME
    )
    assert deny_list.is_denied(principal())
    assert not deny_list.is_denied(principal(session="other"))
    apply_event(
        deny_list, event("account.disabled", account_id="b"), max_token_lifetime_seconds=LIFETIME
    )
    assert deny_list.is_denied(principal("b", "any"))
    clock.advance(LIFETIME - 1)
    assert deny_list.is_denied(principal())
    clock.advance(1)  # every token it could match has expired by now
    assert not deny_list.is_denied(principal())
    assert not deny_list.is_denied(principal("b", "any"))


def test_enabling_lifts_the_account_and_deleting_denies_it() -> None:
    deny_list = DenyList(clock=FakeClock(NOW))
    for kind in ("account.disabled", "account.enabled"):
        apply_event(deny_list, event(kind), max_token_lifetime_seconds=LIFETIME)
    assert not deny_list.is_denied(principal())
    apply_event(deny_list, event("account.deleted"), max_token_lifetime_seconds=LIFETIME)
    assert deny_list.is_denied(principal())


def test_other_events_mean_nothing_and_malformed_ones_are_refused() -> None:
    assert revocation_of(event("account.created"), max_token_lifetime_seconds=LIFETIME) is None
    with pytest.raises(InvalidEventError, match="session_id"):
        revocation_of(event("session.revoked"), max_token_lifetime_seconds=LIFETIME)
    with pytest.raises(InvalidEventError, match="occurred_at"):
        revocation_of(
            event("account.disabled", occurred_at="2026-12-01T10:00:00"),
            max_token_lifetime_seconds=LIFETIME,
        )
    with pytest.raises(InvalidEventError, match="account_id"):
        revocation_of(event("account.deleted", account_id=7), max_token_lifetime_seconds=LIFETIME)
