"""Sessions and accounts whose still-unexpired access tokens must be refused anyway.

A signature proves who issued a token, not that its session is still alive: a token keeps
verifying after logout, a session's revocation or an account's disabling, until its `exp`.
The verifier consults this list after the signature check, so a service that learns of a
revocation (from the auth service's events) refuses those tokens at once.

Each entry lasts `until` a given time, which should be the revocation's time plus the longest
access-token lifetime: by then every token it could match has expired by itself. The list is
bounded; when full, the entry closest to its own expiry goes first (and that is logged, since
a forgotten entry lets a revoked token through until its `exp`). Empty by default. Meant for
one event loop: it takes no locks.
"""

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from auth_client.principal import Principal

DEFAULT_MAX_ENTRIES = 100_000

log = logging.getLogger(__name__)

_Kind = Literal["session", "subject"]


@dataclass(frozen=True, slots=True)
class _SubjectEntry:
    until: float
    # Tokens issued before this time are refused; None refuses every token of the subject.
    issued_before: float | None


class DenyList:
    """Session ids (`sid`) and subjects (`sub`) whose tokens are refused, each for a while."""

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, *, clock: Callable[[], float] = time.time
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        self._sessions: dict[str, float] = {}
        self._subjects: dict[str, _SubjectEntry] = {}
        # Expiry order, for purging and eviction; an entry extended later leaves a stale
        # heap item behind, recognised (its time no longer matches) and skipped.
        self._expiry: list[tuple[float, _Kind, str]] = []

    def __len__(self) -> int:
        return len(self._sessions) + len(self._subjects)

    def deny_session(self, session_id: str, *, until: float) -> None:
        """Refuse every token of the session `sid` until `until` (seconds since the epoch)."""
        now = self._clock()
        if until <= now:
            return  # every token it could match has already expired
        until = max(until, self._sessions.get(session_id, until))
        self._sessions[session_id] = until
        self._remember(now, until, "session", session_id)

    def deny_subject(
        self, subject: str, *, until: float, issued_before: float | None = None
    ) -> None:
        """Refuse the tokens of the subject `sub` until `until`.

        With `issued_before` (seconds since the epoch, such as the time an account was
        disabled), only tokens whose `iat` is earlier are refused, so tokens issued after the
        account came back keep working; without it, every token of the subject is refused.
        """
        now = self._clock()
        if until <= now:
            return
        held = self._subjects.get(subject)
        if held is not None:
            until = max(until, held.until)
            if held.issued_before is None or issued_before is None:
                issued_before = None
            else:
                issued_before = max(issued_before, held.issued_before)
        self._subjects[subject] = _SubjectEntry(until, issued_before)
        self._remember(now, until, "subject", subject)

    def allow_subject(self, subject: str) -> None:
        """Take the subject off the list (an account enabled again); its sessions stay."""
        self._subjects.pop(subject, None)  # its heap item is stale now, skipped when met

    def is_denied(self, principal: Principal) -> bool:
        """Whether the token's session or subject is on the list (an expired entry is not)."""
        now = self._clock()
        if principal.session_id is not None:
            until = self._sessions.get(principal.session_id)
            if until is not None and now < until:
                return True
        entry = self._subjects.get(principal.subject)
        if entry is None or now >= entry.until:
            return False
        return entry.issued_before is None or principal.issued_at < entry.issued_before

    def _remember(self, now: float, until: float, kind: _Kind, key: str) -> None:
        heapq.heappush(self._expiry, (until, kind, key))
        while self._expiry and self._expiry[0][0] <= now:
            self._drop_first()
        while len(self) > self._max_entries:
            until, kind, key = self._expiry[0]
            if self._drop_first():
                log.warning(
                    "deny_list_full",
                    extra={"kind": kind, "evicted_until": until, "max_entries": self._max_entries},
                )
        if len(self._expiry) > 2 * self._max_entries:
            self._compact()

    def _drop_first(self) -> bool:
        """Pop the earliest heap item; drop its entry unless the item is stale. Say if it was."""
        until, kind, key = heapq.heappop(self._expiry)
        if kind == "session":
            if self._sessions.get(key) == until:
                del self._sessions[key]
                return True
        else:
            entry = self._subjects.get(key)
            if entry is not None and entry.until == until:
                del self._subjects[key]
                return True
        return False

    def _compact(self) -> None:
        self._expiry = [(until, "session", key) for key, until in self._sessions.items()]
        self._expiry += [(entry.until, "subject", key) for key, entry in self._subjects.items()]
        heapq.heapify(self._expiry)
