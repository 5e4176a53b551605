"""The auth service's public signing keys, fetched from its JWKS and cached as it asks.

The rules, in the order they matter:
- a key the cached set holds is served from memory; once the set is older than its
  `Cache-Control: max-age` (clamped to our bounds) it is refreshed in the background while
  the old set keeps answering (stale-while-revalidate);
- a `kid` the set lacks triggers at most one fetch per cooldown, and every caller missing at
  the same moment waits on that one fetch: a flood of forged `kid`s cannot flood the auth
  service;
- when a fetch fails, the last good set stays in use for a bounded time, and it is logged;
- before any set was loaded (auth not up yet) a fetch is retried at most once per retry
  interval, so start-up never fails and readiness follows the auth service;
- redirects are never followed: the key set comes from the URL configured, or not at all.

Log records (standard `logging`, logger `auth_client.jwks`) carry the event name as their
message and the details as attributes: `jwks_fetched`, `jwks_fetch_failed`, `jwks_key_skipped`.
"""

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import httpx
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError

# The only algorithm the auth service signs with, and so the only one a key may carry.
SIGNING_ALGORITHM = "RS256"
MIN_RSA_KEY_BITS = 2048
MAX_JWKS_BYTES = 1_000_000
MAX_KID_LENGTH = 128
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)

log = logging.getLogger(__name__)


class JwksError(Exception):
    """The key set could not be fetched or read; the message says why (for logs)."""


@dataclass(frozen=True)
class KeySet:
    """Keys by `kid`, when they were fetched and until when they count as fresh."""

    keys: Mapping[str, RSAPublicKey]
    fetched_at: float
    fresh_until: float


def parse_max_age(cache_control: str | None) -> float | None:
    """The `max-age` of a `Cache-Control` header; 0 for no-store/no-cache; None when absent."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None


def parse_key_set(document: Any) -> dict[str, RSAPublicKey]:
    """The RS256 signing keys of a JWKS document (RFC 7517); every other entry is skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksError("not a JWK set")
    keys: dict[str, RSAPublicKey] = {}
    for entry in document["keys"]:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        reason = _unusable_reason(entry, kid)
        if reason is None:
            assert isinstance(kid, str)
            try:
                key = RSAAlgorithm.from_jwk(entry)
            except (InvalidKeyError, ValueError, TypeError) as exc:
                reason = f"unreadable RSA key ({type(exc).__name__})"
            else:
                if not isinstance(key, RSAPublicKey):
                    reason = "not a public key"
                elif key.key_size < MIN_RSA_KEY_BITS:
                    reason = f"RSA key of {key.key_size} bits"
                elif kid in keys:
                    reason = "duplicate kid"
                else:
                    keys[kid] = key
                    continue
        skipped = {"kid": kid if isinstance(kid, str) else None, "reason": reason}
        log.warning("jwks_key_skipped", extra=skipped)
    return keys


def _unusable_reason(entry: Any, kid: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        return "no usable kid"
    if entry.get("kty") != "RSA" or entry.get("alg") != SIGNING_ALGORITHM:
        return "not an RS256 key"
    if entry.get("use", "sig") != "sig":
        return "not a signing key"
    if "d" in entry:
        return "private key material"
    return None


class JwksClient:
    """The cached key set of one JWKS URL; the only source of keys tokens are checked with."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        *,
        min_cache_seconds: float = 60,
        max_cache_seconds: float = 3600,
        refetch_cooldown_seconds: float = 30,
        max_staleness_seconds: float = 3600,
        retry_seconds: float = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= min_cache_seconds <= max_cache_seconds:
            raise ValueError("min_cache_seconds must be between 0 and max_cache_seconds")
        self._http = http
        self._url = url
        self._min_cache = min_cache_seconds
        self._max_cache = max_cache_seconds
        self._cooldown = refetch_cooldown_seconds
        self._max_staleness = max_staleness_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._key_set: KeySet | None = None
        self._fetch: asyncio.Task[None] | None = None
        self._last_attempt = -math.inf
        self._last_attempt_failed = False
        self.fetch_count = 0
        """HTTP requests made to the JWKS URL so far (logged with every fetch)."""

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        *,
        timeout_seconds: float = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> AsyncIterator[Self]:
        """A client with an HTTP client of its own, already loading the key set; closed on exit.

        `options` are the constructor's (cache bounds, cooldown, staleness, retry);
        `transport` replaces the network (tests: `httpx.MockTransport`).
        """
        async with httpx.AsyncClient(
            transport=transport, timeout=timeout_seconds, follow_redirects=False
        ) as http:
            client = cls(http, url, **options)
            client.start_loading()
            try:
                yield client
            finally:
                await client.aclose()

    @property
    def ready(self) -> bool:
        """True while a usable (loaded, not too stale, non-empty) key set is held."""
        key_set = self._usable(self._clock())
        return key_set is not None and bool(key_set.keys)

    def has_key(self, kid: str) -> bool:
        """Whether the current usable set holds `kid`; never fetches."""
        key_set = self._usable(self._clock())
        return key_set is not None and kid in key_set.keys

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        """The key for `kid`, fetching the set only as the rules above allow."""
        now = self._clock()
        key_set = self._usable(now)
        key = key_set.keys.get(kid) if key_set is not None else None
        if key is not None:
            assert key_set is not None
            if now >= key_set.fresh_until and self._may_refresh_expired(now):
                self._start_fetch(now)  # not awaited: the held key answers meanwhile
            return key
        fetch = self._fetch_for_miss(now, cold=key_set is None)
        if fetch is None:
            return None
        # Shielded: a caller that gives up must not cancel the fetch others are waiting on.
        await asyncio.shield(fetch)
        key_set = self._usable(self._clock())
        return key_set.keys.get(kid) if key_set is not None else None

    def start_loading(self) -> None:
        """Begin loading the key set in the background (at start-up; never raises)."""
        if self._key_set is None and self._fetch is None:
            self._start_fetch(self._clock())

    async def load(self) -> bool:
        """Try to hold a usable key set, fetching if the rules allow; say whether it is held."""
        if not self.ready:
            now = self._clock()
            fetch = self._fetch_for_miss(now, cold=self._usable(now) is None)
            if fetch is not None:
                await asyncio.shield(fetch)
        return self.ready

    async def wait_idle(self) -> None:
        """Wait until no fetch is in flight (a background refresh included)."""
        while self._fetch is not None:
            await asyncio.shield(self._fetch)

    async def aclose(self) -> None:
        """Cancel a fetch in flight (at shutdown)."""
        if self._fetch is not None:
            self._fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetch

    def _usable(self, now: float) -> KeySet | None:
        key_set = self._key_set
        if key_set is None or now - key_set.fetched_at > self._max_staleness:
            return None
        return key_set

    def _may_refresh_expired(self, now: float) -> bool:
        # After a success the set's own max-age governs; after a failure, the cooldown.
        if self._fetch is not None:
            return False
        return not self._last_attempt_failed or now - self._last_attempt >= self._cooldown

    def _fetch_for_miss(self, now: float, *, cold: bool) -> asyncio.Task[None] | None:
        if self._fetch is not None:
            return self._fetch
        if cold:
            allowed = now - self._last_attempt >= self._retry
        else:
            assert self._key_set is not None
            expired = now >= self._key_set.fresh_until
            allowed = (expired and self._may_refresh_expired(now)) or (
                now - self._last_attempt >= self._cooldown
            )
        return self._start_fetch(now) if allowed else None

    def _start_fetch(self, now: float) -> asyncio.Task[None]:
        self._last_attempt = now
        self._fetch = asyncio.create_task(self._fetch_and_store(), name="jwks-fetch")
        return self._fetch

    async def _fetch_and_store(self) -> None:
        self.fetch_count += 1
        try:
            keys, max_age = await self._fetch_keys()
        except Exception as exc:  # whatever went wrong, the held key set keeps answering
            self._last_attempt_failed = True
            self._log_failure(exc)
        else:
            now = self._clock()
            ttl = min(max(max_age if max_age is not None else 0, self._min_cache), self._max_cache)
            self._key_set = KeySet(keys, fetched_at=now, fresh_until=now + ttl)
            self._last_attempt_failed = False
            fetched = {
                "url": self._url,
                "kids": sorted(keys),
                "cache_seconds": ttl,
                "fetch_count": self.fetch_count,
            }
            log.info("jwks_fetched", extra=fetched)
        finally:
            self._fetch = None

    async def _fetch_keys(self) -> tuple[dict[str, RSAPublicKey], float | None]:
        response = await self._http.get(
            self._url,
            headers={"Accept": "application/jwk-set+json, application/json"},
            # Whatever the HTTP client was built with: a redirect could lead anywhere.
            follow_redirects=False,
        )
        if response.status_code != 200:
            raise JwksError(f"status {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksError("response too large")
        try:
            document = response.json()
        except ValueError as exc:
            raise JwksError("response is not JSON") from exc
        return parse_key_set(document), parse_max_age(response.headers.get("cache-control"))

    def _log_failure(self, exc: Exception) -> None:
        now = self._clock()
        key_set = self._usable(now)
        failure = {
            "url": self._url,
            "error": type(exc).__name__,
            "reason": str(exc) if isinstance(exc, JwksError) else None,
            "fetch_count": self.fetch_count,
            "serving_stale_keys": key_set is not None,
            "stale_for_seconds": (
                round(now - key_set.fresh_until, 1)
                if key_set is not None and now > key_set.fresh_until
                else None
            ),
        }
        log.warning("jwks_fetch_failed", extra=failure)
