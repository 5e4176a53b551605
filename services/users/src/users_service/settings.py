"""Every setting of the users service, read from the environment and validated at start."""

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    trusted_proxies: str = Field("127.0.0.1,::1", validation_alias="TRUSTED_PROXIES")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

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
        return self
