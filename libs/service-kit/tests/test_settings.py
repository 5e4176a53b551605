"""What every service's settings share: defaults built from other settings, and the
proxies a typing mistake would make wrong refused at start."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from testsupport.example_service import ExampleSettings


def test_the_public_url_defaults_to_the_gateways_port_without_a_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    assert ExampleSettings().public_url == "http://127.0.0.1:9100"
    assert ExampleSettings(public_url="https://id.example.com/").public_url == (
        "https://id.example.com"
    )


def test_without_a_database_url_a_sqlite_file_named_for_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EXAMPLE_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    expected = f"sqlite+aiosqlite:///{tmp_path.resolve()}/example.sqlite3"
    assert ExampleSettings().database_url == expected


@pytest.mark.parametrize("proxies", ["10.0.0.0/33", "not-an-address", "127.0.0.1,gateway"])
def test_trusted_proxies_that_are_no_addresses_are_refused(proxies: str) -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        ExampleSettings(trusted_proxies=proxies)


def test_the_routes_live_under_the_service_name() -> None:
    assert ExampleSettings().route_prefix == "/example"


def test_several_workers_need_postgresql(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="WEB_CONCURRENCY > 1 needs PostgreSQL"):
        ExampleSettings(web_concurrency=2, data_dir=tmp_path)
    postgres = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    assert ExampleSettings(web_concurrency=2, database_url=postgres).web_concurrency == 2
