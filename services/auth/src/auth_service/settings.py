"""Every setting of the auth service, read from the environment and validated at start."""

import os
from typing import ClassVar, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator

from auth_service import kek
from auth_service.event_publisher import parse_subscribers
from auth_service.kek import DEVELOPMENT_KEY_ENCRYPTION_KEY
from auth_service.registration import CLIENT_ID_PATTERN
from service_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    """Environment variables of the auth service (see the README's settings table)."""

    service_name: ClassVar[str] = "auth"
    host: str = Field("127.0.0.1", validation_alias="AUTH_HOST")
    port: int = Field(8001, ge=1, le=65535, validation_alias="AUTH_PORT")
    database_url: str = Field(
        "", validation_alias=AliasChoices("AUTH_DATABASE_URL", "DATABASE_URL")
    )
    # The development default lets a development stack start with no setup; outside
    # development only a value kek.problem_with accepts is (at least 32 random bytes).
    key_encryption_key: SecretStr = Field(SecretStr(DEVELOPMENT_KEY_ENCRYPTION_KEY))

    # Passwords: bcrypt's cost factor (each +1 doubles the work), the threads that hash them
    # off the event loop (0: one per core), and the lowest zxcvbn score (0-4) accepted.
    bcrypt_cost: int = Field(12, ge=4, le=31)
    password_hash_threads: int = Field(0, ge=0, le=64)
    # The longest a password check may queue for a thread; past it, 503 at once (0: no bound).
    password_hash_max_wait_seconds: float = Field(2.0, ge=0)
    # A public client's registration is read at most this often per process (0: every
    # request); a change to one takes effect everywhere within it (client_auth.py).
    public_client_cache_seconds: float = Field(5, ge=0, le=60)
    # A confidential client's secret that checked is accepted again for this long per process
    # without a read (0: read at every request); a rotation or deletion empties it at once in
    # every replica (PostgreSQL), within this otherwise (client_auth.py).
    verified_client_cache_seconds: float = Field(5, ge=0, le=60)
    password_min_score: int = Field(3, ge=0, le=4)

    # Access tokens (RFC 9068): lifetime (the audience is a shared setting), and the scopes
    # that exist (a client is registered with some of them).
    access_token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    # Introspection keeps a token's checked claims and its session's liveness this long per
    # process (0: read at every request); a revocation empties it at once in every replica
    # (PostgreSQL), within this otherwise (introspection.py).
    introspection_cache_seconds: float = Field(2, ge=0, le=60)
    scopes: str = Field("openid email profile users:read", min_length=1)

    # Clients: the public client a request naming none is (created at start, with these
    # scopes), and how long a rotated-out client secret keeps working.
    default_client_id: str = Field("public", pattern=CLIENT_ID_PATTERN)
    default_client_scopes: str = "profile"
    client_secret_rotation_grace_seconds: int = Field(86_400, ge=0)

    # Browser sign-in (OpenID Connect): an authorization code's lifetime (RFC 6749 §4.1.2
    # says short; never more than a minute), and the hosted page's sign-in session's, after
    # which the page asks for the password again.
    authorization_code_ttl_seconds: int = Field(60, ge=1, le=60)
    sign_in_session_ttl_seconds: int = Field(12 * 3600, ge=60)

    # Refresh tokens: unused for `idle` seconds they lapse; a session never outlives `absolute`.
    refresh_token_idle_ttl_seconds: int = Field(14 * 86_400, ge=60)
    refresh_token_absolute_ttl_seconds: int = Field(30 * 86_400, ge=60)

    # Signing keys: the key set's cache lifetime (Cache-Control max-age), how often each
    # replica reloads the keys from the database, and how long a rotated-in key is published
    # before it signs (it must outlast both, so that every verifier has seen it first).
    jwks_max_age_seconds: int = Field(300, ge=0, le=86_400)
    key_refresh_seconds: float = Field(30, gt=0, le=3600)
    key_publish_delay_seconds: float = Field(600, gt=0)

    # Login throttling (throttling.py): failures of one login name from one address, of
    # one address on every login, and of one login from every address (that last count
    # never refuses; past it, each failing address waits the longest wait). Beyond the free
    # ones each failure blocks for base * 2^n seconds (capped); failures are forgotten
    # after the window without failure or wait.
    login_free_attempts_per_account_address: int = Field(5, ge=1)
    login_free_attempts_per_address: int = Field(20, ge=1)
    login_free_attempts_per_account: int = Field(10, ge=1)
    # On a targeted login, an address's first failure waits only this (a typo); bounded,
    # since it is the one wait the owner may meet.
    login_targeted_first_wait_seconds: float = Field(5, gt=0, le=30)
    login_throttle_base_seconds: float = Field(1, gt=0)
    login_throttle_max_seconds: float = Field(900, gt=0)
    login_throttle_window_seconds: float = Field(900, gt=0)

    # Retention: a periodic purge in every replica (0 turns it off; `auth-service purge`
    # does the same by hand) deletes ended sessions and expired refresh tokens after the
    # session retention, and audit events after the audit retention.
    purge_interval_seconds: float = Field(3600, ge=0)
    session_retention_seconds: int = Field(7 * 86_400, ge=0)
    audit_retention_seconds: int = Field(365 * 86_400, ge=0)

    # Events (docs/events.md): the subscribers, `name=url` pairs separated by commas
    # (`users=http://127.0.0.1:8002/users/events`), none by default. One replica publishes,
    # holding a lease it renews at every poll; failed deliveries are retried after a delay
    # that doubles up to the cap; a round delivers at most a batch to each subscriber.
    event_subscribers: str = ""
    event_poll_seconds: float = Field(0.5, gt=0, le=1)
    event_batch_size: int = Field(100, ge=1, le=1000)
    event_retry_max_seconds: float = Field(5, gt=0, le=300)
    event_delivery_timeout_seconds: float = Field(5, gt=0, le=60)
    event_publisher_lease_seconds: float = Field(15, gt=0, le=300)

    # Mail (mail.py, mail_delivery.py): the SMTP server (STARTTLS when SMTP_STARTTLS), the
    # sender address, and the delivery worker's polling interval (0: no worker in this
    # process), attempts and first retry delay (doubling on each failure, up to an hour).
    # The development default is the mail sink `make run` starts.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8025, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = Field("Auth <no-reply@example.com>", min_length=3)
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(10, gt=0, le=120)
    mail_poll_seconds: float = Field(1, ge=0)
    mail_max_attempts: int = Field(8, ge=1, le=50)
    mail_retry_base_seconds: float = Field(5, gt=0)
    # Mailed links: verification and password reset pages of the platform's app, which post
    # the token to this API; a link is `<base>/verify-email?token=…` or
    # `<base>/reset-password?token=…`. Empty: PUBLIC_URL.
    email_link_base_url: str = ""
    # How long a mailed token works (at most 30 minutes), and how many links (reset or
    # verification) one email address and one client address may ask for before each
    # further request waits (doubling from a minute, up to LOGIN_THROTTLE_MAX_SECONDS;
    # forgotten after LOGIN_THROTTLE_WINDOW_SECONDS without a request).
    email_token_ttl_seconds: int = Field(1800, ge=60, le=1800)
    mail_free_requests_per_recipient: int = Field(3, ge=1)
    mail_free_requests_per_address: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _refuse_inconsistent_timings_and_development_secrets(self) -> Self:
        if self.key_publish_delay_seconds <= self.jwks_max_age_seconds + self.key_refresh_seconds:
            raise ValueError(
                "KEY_PUBLISH_DELAY_SECONDS must exceed JWKS_MAX_AGE_SECONDS + KEY_REFRESH_SECONDS: "
                "a new key must be in every cached key set before it signs"
            )
        if self.login_throttle_window_seconds < self.login_throttle_max_seconds:
            raise ValueError(
                "LOGIN_THROTTLE_WINDOW_SECONDS must be at least LOGIN_THROTTLE_MAX_SECONDS: "
                "failures forgotten sooner would let an address guess more often than the "
                "longest wait allows (the README's bound)"
            )
        if self.refresh_token_absolute_ttl_seconds < self.refresh_token_idle_ttl_seconds:
            raise ValueError(
                "REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS must be at least REFRESH_TOKEN_IDLE_TTL_SECONDS"
            )
        unknown = set(self.default_client_scopes.split()) - self.scope_set
        if unknown:
            raise ValueError(
                "DEFAULT_CLIENT_SCOPES names scopes that are not in SCOPES: "
                + " ".join(sorted(unknown))
            )
        parse_subscribers(self.event_subscribers)  # a ValueError names the bad pair
        if self.event_publisher_lease_seconds <= (
            self.event_delivery_timeout_seconds + self.event_poll_seconds
        ):
            raise ValueError(
                "EVENT_PUBLISHER_LEASE_SECONDS must exceed EVENT_DELIVERY_TIMEOUT_SECONDS + "
                "EVENT_POLL_SECONDS: the publisher renews its lease between deliveries"
            )
        if self.environment != "development":
            problem = kek.problem_with(self.key_encryption_key.get_secret_value())
            if problem is not None:
                raise ValueError(
                    f"KEY_ENCRYPTION_KEY is refused outside ENVIRONMENT=development: {problem}; "
                    "`auth-service keys generate-kek` prints a good one"
                )
        return self

    @property
    def scope_set(self) -> frozenset[str]:
        """The scopes clients may request; all of them when they request none."""
        return frozenset(self.scopes.split())

    @property
    def default_client_scope_set(self) -> frozenset[str]:
        """The default public client's scopes."""
        return frozenset(self.default_client_scopes.split())

    @property
    def link_base_url(self) -> str:
        """Where mailed links point: EMAIL_LINK_BASE_URL, or PUBLIC_URL."""
        return (self.email_link_base_url or self.public_url).rstrip("/")

    @property
    def hash_threads(self) -> int:
        return self.password_hash_threads or os.cpu_count() or 1
