"""The settings every service reads, as a base for each service's own `Settings` class.

A field is read from the environment variable of its name in capitals (`log_level` from
LOG_LEVEL). A service subclasses `ServiceSettings`, names itself (`service_name`, which also
names its default SQLite file) and declares the three fields whose variables carry its name:
`host` (`AUTH_HOST`), `port` (`AUTH_PORT`) and `database_url` (`AUTH_DATABASE_URL`, else
`DATABASE_URL`). Everything is validated when the settings are built, so a service refuses
to start on a bad value.
"""

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service_kit.client_address import TrustedProxies

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # the gateway's default too


class ServiceSettings(BaseSettings):
    """The environment variables both services share (see the README's settings table)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    service_name: ClassVar[str]
    """`auth`, `users`: the routes' prefix (`/auth/…`), the logs' `service`, the SQLite file."""

    host: str
    port: int
    database_url: str

    environment: Literal["development", "test", "production"] = "development"
    gateway_port: int = Field(8000, ge=1, le=65535)
    data_dir: Path = Path(".data")
    public_url: str = ""
    # The deployment's own proxies, whose X-Forwarded-For is believed (service_kit.client_address).
    trusted_proxies: str = "127.0.0.1,::1"
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, gt=0)
    log_level: str = "INFO"
    # Requests served at once by one process; past it, a request waits for a slot at most
    # the queue timeout, then gets 503 with Retry-After (service_kit.overload). 0: no limit.
    max_concurrent_requests: int = Field(64, ge=0)
    request_queue_timeout_seconds: float = Field(0.25, ge=0, le=10)
    # Worker processes `serve` runs on the one port (PostgreSQL only: SQLite writers in
    # several processes back off in sleeps).
    web_concurrency: int = Field(1, ge=1, le=64)
    # uvicorn's event loop. asyncio by default: under 256 connections uvloop left some
    # connections unserved for seconds (wrk timeouts in every run; docs/benchmarks.md).
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # The access tokens' `aud`: the auth service issues it, every resource server requires it.
    access_token_audience: str = Field("auth-platform", min_length=1)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        TrustedProxies(value)  # a typing mistake is a settings error at start
        return value

    @model_validator(mode="after")
    def _fill_shared_defaults(self) -> Self:
        # Defaults that depend on other settings; the model is frozen, hence object.__setattr__.
        if not self.database_url:
            sqlite_path = (self.data_dir / f"{self.service_name}.sqlite3").resolve()
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{sqlite_path}")
        if self.web_concurrency > 1 and not self.database_url.startswith("postgresql"):
            raise ValueError("WEB_CONCURRENCY > 1 needs PostgreSQL (DATABASE_URL)")
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://127.0.0.1:{self.gateway_port}")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        return self

    @property
    def route_prefix(self) -> str:
        """Where every route of the service lives, the same directly and through the gateway."""
        return f"/{self.service_name}"
