"""Password policy and bcrypt hashing, always off the event loop."""

import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

import anyio
import bcrypt

MIN_LENGTH = 8
# bcrypt reads at most 72 bytes; longer input would be silently truncated, so it is refused.
MAX_BYTES = 72
_BCRYPT_COST = re.compile(r"^\$2[aby]\$(\d\d)\$")

T = TypeVar("T")

# Set inside an admitted operation, so that a nested one (a password change checks the
# current password, then hashes the new one) is not counted twice.
_ADMITTED: ContextVar[bool] = ContextVar("password_work_admitted", default=False)


class PasswordWorkBusyError(Exception):
    """Too many password checks are already waiting for a thread: try again shortly."""

    retry_after_seconds = 1


class PasswordPolicyError(ValueError):
    """The password breaks a rule; `rule` names it, the message explains it to a person."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def normalize(password: str) -> str:
    """NFKC, so that the same password typed on two keyboards is the same password."""
    return unicodedata.normalize("NFKC", password)


def check_shape(password: str) -> None:
    """The rules that need no estimator: length in characters and in UTF-8 bytes."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(
            "password_too_short", f"The password must be at least {MIN_LENGTH} characters long."
        )
    if len(password.encode("utf-8")) > MAX_BYTES:
        raise PasswordPolicyError(
            "password_too_long", f"The password must be at most {MAX_BYTES} bytes in UTF-8."
        )


def check_policy(password: str, *, personal: list[str], min_score: int) -> None:
    """Raise `PasswordPolicyError` unless the (normalised) password may be used.

    `personal` holds what an attacker knows about the account (email, username): the
    password may not be one of them, and zxcvbn penalises passwords built from them.
    """
    check_shape(password)
    folded = password.casefold()
    personal_folded = [p.casefold() for p in personal if p]
    email_locals = [p.split("@", 1)[0] for p in personal_folded if "@" in p]
    if folded in personal_folded or folded in email_locals:
        raise PasswordPolicyError(
            "password_is_personal", "The password may not be the email address or username."
        )
    # Imported on first use: its dictionaries are ~12 MB resident that a process which
    # only signs people in (and every replica but one at start) never needs.
    from zxcvbn import zxcvbn

    estimate = zxcvbn(password, user_inputs=personal_folded + email_locals)
    if estimate["score"] < min_score:
        warning = estimate["feedback"]["warning"] or "This password is too easy to guess."
        raise PasswordPolicyError("password_too_weak", f"{warning} Choose a less common password.")


def hash_cost(password_hash: str) -> int:
    """The cost factor a bcrypt hash was made with (0 when it is not a bcrypt hash)."""
    match = _BCRYPT_COST.match(password_hash)
    return int(match.group(1)) if match else 0


class PasswordHasher:
    """bcrypt in a bounded pool of threads, so that hashing never blocks the event loop.

    bcrypt releases the GIL, so `threads` (one per core) hashes run truly in parallel
    while the loop keeps answering; more threads would only queue inside the CPU.

    The queue in front of the threads is bounded in time: `admission()` lets in at most as
    many operations as the threads finish in `max_wait_seconds` (timed on this machine at
    start, with the dummy hash), and refuses the next with `PasswordWorkBusyError` at once,
    instead of making it (and every request after it) wait seconds. 0: unbounded.
    """

    def __init__(self, cost: int, threads: int, *, max_wait_seconds: float = 0) -> None:
        self.cost = cost
        self._limiter = anyio.CapacityLimiter(threads)
        started = time.perf_counter()
        # Unknown accounts are checked against this, so they cost the same time as known ones.
        self._dummy_hash = bcrypt.hashpw(b"dummy password", bcrypt.gensalt(cost)).decode()
        one_hash = max(time.perf_counter() - started, 1e-4)
        self.capacity = (
            threads + math.ceil(threads * max_wait_seconds / one_hash) if max_wait_seconds else 0
        )
        """How many operations `admission()` lets in at once (0: no bound)."""
        self._admitted = 0

    @contextmanager
    def admission(self) -> Iterator[None]:
        """Around an operation that checks or hashes passwords: `PasswordWorkBusyError` when
        the queue is full, before the operation does anything (nested ones count once)."""
        if _ADMITTED.get():
            yield
            return
        if self.capacity and self._admitted >= self.capacity:
            raise PasswordWorkBusyError
        self._admitted += 1
        token = _ADMITTED.set(True)
        try:
            yield
        finally:
            self._admitted -= 1
            _ADMITTED.reset(token)

    async def _run(self, function: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(function, limiter=self._limiter)

    async def hash(self, password: str) -> str:
        """A new bcrypt hash of the password as typed (normalised here, as `verify` does)."""
        encoded = normalize(password).encode("utf-8")
        salt = bcrypt.gensalt(self.cost)
        return (await self._run(lambda: bcrypt.hashpw(encoded, salt))).decode()

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Check the password as typed (normalised here, as `hash` does) in constant time;
        `None` (no account) checks a dummy hash."""
        encoded = normalize(password).encode("utf-8")
        target = (password_hash or self._dummy_hash).encode()
        if len(encoded) > MAX_BYTES:
            # Never truncated: such a password cannot match, but it costs the same time.
            encoded, password_hash = b"", None
        matched = await self._run(lambda: bcrypt.checkpw(encoded, target))
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with a lower cost than the current setting."""
        return hash_cost(password_hash) < self.cost

    async def check_policy(self, password: str, *, personal: list[str], min_score: int) -> None:
        """`check_policy` of the password as typed (normalised here, as `hash` will), off the
        loop: zxcvbn takes milliseconds on long passwords."""
        password = normalize(password)
        check_shape(password)  # cheap; keeps huge input away from the estimator
        await anyio.to_thread.run_sync(
            lambda: check_policy(password, personal=personal, min_score=min_score)
        )
