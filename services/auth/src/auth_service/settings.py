"""Every setting of the auth service, read from the environment and validated at start."""

from pathlib import Path
from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Published so that a development stack starts with no setup; refused anywhere else.
DEVELOPMENT_KEY_ENCRYPTION_KEY = "development-only-key-encryption-key-change-me"


class Settings(BaseSettings):
    """Environment variables of the auth service (see the README's settings table)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True)

    environment: Literal["development", "test", "production"] = "development"
    host: str = Field("127.0.0.1", validation_alias="AUTH_HOST")
    port: int = Field(8001, ge=1, le=65535, validation_alias="AUTH_PORT")
    gateway_port: int = Field(8000, ge=1, le=65535, validation_alias="GATEWAY_PORT")
    data_dir: Path = Field(Path(".data"), validation_alias="DATA_DIR")
    database_url: str = Field(
        "", validation_alias=AliasChoices("AUTH_DATABASE_URL", "DATABASE_URL")
    )
    public_url: str = Field("", validation_alias="PUBLIC_URL")
    key_encryption_key: SecretStr = Field(
        SecretStr(DEVELOPMENT_KEY_ENCRYPTION_KEY), validation_alias="KEY_ENCRYPTION_KEY"
    )
    trusted_proxies: str = Field("127.0.0.1,::1", validation_alias="TRUSTED_PROXIES")
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_development_secrets(self) -> Self:
        # Defaults that depend on other settings; the model is frozen, hence object.__setattr__.
        if not self.database_url:
            sqlite_path = (self.data_dir / "auth.sqlite3").resolve()
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{sqlite_path}")
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://127.0.0.1:{self.gateway_port}")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if (
            self.environment != "development"
            and self.key_encryption_key.get_secret_value() == DEVELOPMENT_KEY_ENCRYPTION_KEY
        ):
            raise ValueError(
                "KEY_ENCRYPTION_KEY is the published development default; "
                "set a secret of your own outside ENVIRONMENT=development"
            )
        return self
