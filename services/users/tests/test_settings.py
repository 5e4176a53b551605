"""Settings: the defaults that trust the auth service directly with the shared audience,
and the bounds that keep verification strict (a small clock leeway, a sane key-set cache)."""

import pytest
from pydantic import ValidationError

from users_service.settings import Settings


def test_defaults_trust_the_auth_service_directly_with_the_shared_audience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("JWKS_URL", "PUBLIC_URL", "ACCESS_TOKEN_AUDIENCE", "TOKEN_LEEWAY_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_PORT", "9101")
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    settings = Settings()
    assert settings.jwks_url == "http://127.0.0.1:9101/.well-known/jwks.json"
    assert settings.public_url == "http://127.0.0.1:9100"
    assert settings.access_token_audience == "auth-platform"
    assert settings.token_leeway_seconds <= 30


@pytest.mark.parametrize(
    "overrides",
    [
        {"token_leeway_seconds": 31},
        {"jwks_cache_min_seconds": 600, "jwks_cache_max_seconds": 60},
        {"access_token_audience": ""},
    ],
)
def test_out_of_bounds_settings_are_refused_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]
