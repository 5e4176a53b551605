"""Every setting of the users service, read from the environment and validated at start."""

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service_kit.body_limit import DEFAULT_MAX_BODY_BYTES
from service_kit.client_address import TrustedProxies


class Settings(BaseSettings):
    """Environment variables of the users service (see the README's settings table)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    environment: Literal["development", "test", "production"] = "development"
    host: str = Field("127.0.0.1", validation_alias="USERS_HOST")
    port: int = Field(8002, ge=1, le=65535, validation_alias="USERS_PORT")
    auth_port: int = Field(8001, ge=1, le=65535, validation_alias="AUTH_PORT")
    gateway_port: int = Field(8000, ge=1, le=65535, validation_alias="GATEWAY_PORT")
    data_dir: Path = Field(Path(".data"), validation_alias="DATA_DIR")
    database_url: str = Field(
        "", validation_alias=AliasChoices("USERS_DATABASE_URL", "DATABASE_URL")
    )
    public_url: str = Field("", validation_alias="PUBLIC_URL")
    jwks_url: str = Field("", validation_alias="JWKS_URL")
    # The deployment's own proxies, whose X-Forwarded-For is believed (service_kit.client_address).
    trusted_proxies: str = Field("127.0.0.1,::1", validation_alias="TRUSTED_PROXIES")
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0, validation_alias="MAX_BODY_BYTES")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

    # What an access token must say about itself (RFC 9068): `iss` is PUBLIC_URL, as the
    # auth service issues it; `aud` is the audience both services are configured with.
    access_token_audience: str = Field(
        "auth-platform", min_length=1, validation_alias="ACCESS_TOKEN_AUDIENCE"
    )
    # Clock skew tolerated on exp, nbf and iat; RFC 8725 asks for little, the issue caps it.
    token_leeway_seconds: int = Field(10, ge=0, le=30, validation_alias="TOKEN_LEEWAY_SECONDS")
    # Longer tokens are refused before any parsing (ours are well under 2 KB).
    token_max_bytes: int = Field(8192, ge=1024, le=65536, validation_alias="TOKEN_MAX_BYTES")
    token_cache_size: int = Field(10_000, ge=0, le=1_000_000, validation_alias="TOKEN_CACHE_SIZE")

    # The key set's Cache-Control max-age is honoured, clamped to [min, max].
    jwks_cache_min_seconds: float = Field(60, ge=0, validation_alias="JWKS_CACHE_MIN_SECONDS")
    jwks_cache_max_seconds: float = Field(3600, gt=0, validation_alias="JWKS_CACHE_MAX_SECONDS")
    # An unknown `kid` refetches the key set at most once per cooldown.
    jwks_refetch_cooldown_seconds: float = Field(
        30, ge=0, validation_alias="JWKS_REFETCH_COOLDOWN_SECONDS"
    )
    # While the auth service is unreachable the last good key set is used, for this long.
    jwks_max_staleness_seconds: float = Field(
        3600, gt=0, validation_alias="JWKS_MAX_STALENESS_SECONDS"
    )
    # Before any key set was loaded, a failed fetch is retried after this long.
    jwks_retry_seconds: float = Field(1, gt=0, validation_alias="JWKS_RETRY_SECONDS")
    jwks_fetch_timeout_seconds: float = Field(
        3, gt=0, le=30, validation_alias="JWKS_FETCH_TIMEOUT_SECONDS"
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        TrustedProxies(value)  # a typing mistake is a settings error at start
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Self:
        # Defaults that depend on other settings; the model is frozen, hence object.__setattr__.
        if not self.database_url:
            sqlite_path = (self.data_dir / "users.sqlite3").resolve()
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{sqlite_path}")
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://127.0.0.1:{self.gateway_port}")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if not self.jwks_url:
            # The auth service's own address, not the gateway's: the gateway is not in the
            # trust path.
            jwks_url = f"http://127.0.0.1:{self.auth_port}/.well-known/jwks.json"
            object.__setattr__(self, "jwks_url", jwks_url)
        if self.jwks_cache_min_seconds > self.jwks_cache_max_seconds:
            raise ValueError("JWKS_CACHE_MIN_SECONDS must not exceed JWKS_CACHE_MAX_SECONDS")
        return self
