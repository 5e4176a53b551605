"""DenyList: sessions and subjects refused until their entries expire, within a bound."""

import logging
import uuid

import pytest

from auth_client import DenyList, Principal
from testsupport.tokens import FakeClock

NOW = 1_800_000_000.0


def principal(
    subject: str = "account-1", session_id: str | None = "session-1", issued_at: float = NOW
) -> Principal:
    return Principal(
        subject=subject,
        client_id="public",
        scopes=frozenset(),
        roles=frozenset(),
        session_id=session_id,
        expires_at=int(issued_at) + 900,
        issued_at=int(issued_at),
        token_id=uuid.uuid4().hex,
        key_id="key-1",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def test_an_empty_list_denies_nothing(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    assert len(deny_list) == 0
    assert not deny_list.is_denied(principal())


def test_a_denied_session_refuses_its_tokens_only(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    deny_list.deny_session("session-1", until=NOW + 900)
    assert deny_list.is_denied(principal(session_id="session-1"))
    assert not deny_list.is_denied(principal(session_id="session-2"))
    assert not deny_list.is_denied(principal(session_id=None))  # a service's token has none


def test_a_denied_subject_refuses_every_token_of_it(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    deny_list.deny_subject("account-1", until=NOW + 900)
    assert deny_list.is_denied(principal("account-1", "session-1"))
    assert deny_list.is_denied(principal("account-1", "session-9", issued_at=NOW + 60))
    assert deny_list.is_denied(principal("account-1", None))
    assert not deny_list.is_denied(principal("account-2"))


def test_a_subject_denied_from_a_time_keeps_later_tokens(clock: FakeClock) -> None:
    # Disabled at NOW, enabled again later: tokens issued after the disabling work again.
    deny_list = DenyList(clock=clock)
    deny_list.deny_subject("account-1", until=NOW + 900, issued_before=NOW)
    assert deny_list.is_denied(principal(issued_at=NOW - 1))
    assert not deny_list.is_denied(principal(issued_at=NOW))
    assert not deny_list.is_denied(principal(issued_at=NOW + 30))


def test_an_entry_expires_at_its_until(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    deny_list.deny_session("session-1", until=NOW + 900)
    deny_list.deny_subject("account-2", until=NOW + 900)
    clock.advance(899)
    assert deny_list.is_denied(principal())
    clock.advance(1)
    assert not deny_list.is_denied(principal())
    assert not deny_list.is_denied(principal("account-2"))
    deny_list.deny_session("session-3", until=NOW + 2000)  # the next change purges the expired
    assert len(deny_list) == 1


def test_an_entry_already_expired_is_not_kept(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    deny_list.deny_session("session-1", until=NOW)
    deny_list.deny_subject("account-1", until=NOW - 5)
    assert len(deny_list) == 0


def test_a_denial_is_never_shortened_nor_narrowed(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    deny_list.deny_session("session-1", until=NOW + 900)
    deny_list.deny_session("session-1", until=NOW + 10)  # a duplicate event, older
    deny_list.deny_subject("account-1", until=NOW + 900)
    deny_list.deny_subject("account-1", until=NOW + 10, issued_before=NOW - 100)
    clock.advance(60)
    assert deny_list.is_denied(principal(session_id="session-1"))
    assert deny_list.is_denied(principal("account-1", "session-2", issued_at=NOW))
    assert len(deny_list) == 2


def test_a_later_denial_of_a_subject_widens_it(clock: FakeClock) -> None:
    deny_list = DenyList(clock=clock)
    deny_list.deny_subject("account-1", until=NOW + 900, issued_before=NOW - 100)
    deny_list.deny_subject("account-1", until=NOW + 1000, issued_before=NOW)
    assert deny_list.is_denied(principal(issued_at=NOW - 50))
    clock.advance(950)
    assert deny_list.is_denied(principal(issued_at=NOW - 50))


def test_the_list_stays_within_its_bound_dropping_the_entry_nearest_its_end(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    deny_list = DenyList(max_entries=3, clock=clock)
    deny_list.deny_session("ends-last", until=NOW + 900)
    deny_list.deny_session("ends-first", until=NOW + 100)
    deny_list.deny_subject("account-1", until=NOW + 500)
    with caplog.at_level(logging.WARNING, logger="auth_client.deny_list"):
        deny_list.deny_session("newest", until=NOW + 800)
    assert len(deny_list) == 3
    assert not deny_list.is_denied(principal("x", "ends-first"))
    assert deny_list.is_denied(principal("x", "ends-last"))
    assert deny_list.is_denied(principal("account-1", None))
    assert deny_list.is_denied(principal("x", "newest"))
    assert [record.msg for record in caplog.records] == ["deny_list_full"]


def test_expired_entries_make_room_before_any_live_one_is_evicted(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    deny_list = DenyList(max_entries=2, clock=clock)
    deny_list.deny_session("old", until=NOW + 10)
    deny_list.deny_session("live", until=NOW + 900)
    clock.advance(20)
    with caplog.at_level(logging.WARNING, logger="auth_client.deny_list"):
        deny_list.deny_session("new", until=NOW + 900)
    assert deny_list.is_denied(principal("x", "live"))
    assert deny_list.is_denied(principal("x", "new"))
    assert caplog.records == []


def test_repeated_denials_of_one_session_keep_memory_bounded(clock: FakeClock) -> None:
    deny_list = DenyList(max_entries=10, clock=clock)
    for n in range(10_000):
        deny_list.deny_session("session-1", until=NOW + 900 + n)
    assert len(deny_list) == 1
    assert len(deny_list._expiry) <= 2 * 10 + 1  # the expiry heap is compacted too
    clock.advance(900 + 9_998)
    assert deny_list.is_denied(principal())
    clock.advance(1)
    assert not deny_list.is_denied(principal())


def test_a_list_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        DenyList(max_entries=0)
