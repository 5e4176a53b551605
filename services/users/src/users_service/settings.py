"""Every setting of the users service, read from the environment and validated at start."""

from typing import ClassVar, Self

from pydantic import AliasChoices, Field, model_validator

from service_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    """Environment variables of the users service (see the README's settings table).

    An access token must say about itself (RFC 9068) that its `iss` is PUBLIC_URL, as the
    auth service issues it, and its `aud` the audience both services are configured with.
    """

    service_name: ClassVar[str] = "users"
    host: str = Field("127.0.0.1", validation_alias="USERS_HOST")
    port: int = Field(8002, ge=1, le=65535, validation_alias="USERS_PORT")
    database_url: str = Field(
        "", validation_alias=AliasChoices("USERS_DATABASE_URL", "DATABASE_URL")
    )

    # The key set is fetched from the auth service's own port, not the gateway's.
    auth_port: int = Field(8001, ge=1, le=65535)
    jwks_url: str = ""
    # Clock skew tolerated on exp, nbf and iat: RFC 8725 asks for little, so at most 30
    # seconds (auth_client refuses more than 60).
    token_leeway_seconds: int = Field(10, ge=0, le=30)
    # Longer tokens are refused before any parsing (ours are well under 2 KB).
    token_max_bytes: int = Field(8192, ge=1024, le=65536)
    token_cache_size: int = Field(10_000, ge=0, le=1_000_000)
    # `GET /users/me` answers kept per replica (users_service.profile_cache; 0: none), each
    # for at most this long; writes on any replica empty them (PostgreSQL: by notification).
    profile_cache_size: int = Field(10_000, ge=0, le=1_000_000)
    profile_cache_seconds: float = Field(60, gt=0, le=3600)

    # The key set's Cache-Control max-age is honoured, clamped to [min, max].
    jwks_cache_min_seconds: float = Field(60, ge=0)
    jwks_cache_max_seconds: float = Field(3600, gt=0)
    # An unknown `kid` refetches the key set at most once per cooldown.
    jwks_refetch_cooldown_seconds: float = Field(30, ge=0)
    # While the auth service is unreachable the last good key set is used, for this long.
    jwks_max_staleness_seconds: float = Field(3600, gt=0)
    # Before any key set was loaded, a failed fetch is retried after this long.
    jwks_retry_seconds: float = Field(1, gt=0)
    jwks_fetch_timeout_seconds: float = Field(3, gt=0, le=30)

    # Revocation (docs/events.md): a deny entry lasts the longest access-token lifetime the
    # auth service issues (the same ACCESS_TOKEN_TTL_SECONDS as auth's) plus the leeway.
    # Each replica reloads the entries this often (and at once on a PostgreSQL NOTIFY).
    access_token_ttl_seconds: int = Field(900, ge=60, le=86_400)
    deny_list_reload_seconds: float = Field(2, gt=0, le=5)
    deny_list_max_entries: int = Field(100_000, ge=1_000, le=10_000_000)

    @model_validator(mode="after")
    def _fill_jwks_url(self) -> Self:
        # A default that depends on another setting; the model is frozen, hence __setattr__.
        if not self.jwks_url:
            # The auth service's own address, not the gateway's: the gateway is not in the
            # trust path.
            jwks_url = f"http://127.0.0.1:{self.auth_port}/.well-known/jwks.json"
            object.__setattr__(self, "jwks_url", jwks_url)
        if self.jwks_cache_min_seconds > self.jwks_cache_max_seconds:
            raise ValueError("JWKS_CACHE_MIN_SECONDS must not exceed JWKS_CACHE_MAX_SECONDS")
        return self

    @property
    def max_token_lifetime_seconds(self) -> float:
        """How long a revoked token may still verify: its lifetime, plus the clock leeway."""
        return float(self.access_token_ttl_seconds + self.token_leeway_seconds)
