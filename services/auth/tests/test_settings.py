"""The auth service's settings: its own variables beside the shared ones, and the values
that contradict each other refused at start."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from auth_service.settings import Settings


def test_the_database_is_the_auth_one_before_the_shared_one_then_a_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AUTH_DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert Settings().database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/auth.sqlite3"
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://shared/db")
    assert Settings().database_url == "postgresql+asyncpg://shared/db"
    monkeypatch.setenv("AUTH_DATABASE_URL", "postgresql+asyncpg://auth/db")
    assert Settings().database_url == "postgresql+asyncpg://auth/db"


def test_host_and_port_are_the_auth_services_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_HOST", "0.0.0.0")  # noqa: S104 - what a container binds
    monkeypatch.setenv("AUTH_PORT", "9001")
    monkeypatch.setenv("USERS_PORT", "9002")
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)  # noqa: S104
    assert settings.route_prefix == "/auth"


def test_a_key_must_be_published_longer_than_any_key_set_is_cached() -> None:
    with pytest.raises(ValidationError, match="KEY_PUBLISH_DELAY_SECONDS"):
        Settings(jwks_max_age_seconds=600, key_refresh_seconds=30, key_publish_delay_seconds=600)


def test_no_refresh_token_may_outlive_its_session() -> None:
    with pytest.raises(ValidationError, match="REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS"):
        Settings(refresh_token_idle_ttl_seconds=7200, refresh_token_absolute_ttl_seconds=3600)


def test_scopes_are_a_set_and_hashing_threads_default_to_the_cores() -> None:
    settings = Settings(scopes="profile  email profile", password_hash_threads=0)
    assert settings.scope_set == frozenset({"profile", "email"})
    assert settings.hash_threads >= 1
