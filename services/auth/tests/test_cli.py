"""`auth-service keys …` and `auth-service accounts …`, run as an operator would."""

import io
import json

import pytest

from auth_service.cli import main
from testsupport.auth_service import STRONG_PASSWORD


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # The CLI reads its settings from the environment, as the service does.
    monkeypatch.setenv("AUTH_DATABASE_URL", database_url)
    monkeypatch.setenv("BCRYPT_COST", "4")
    monkeypatch.setenv("KEY_PUBLISH_DELAY_SECONDS", "600")
    return database_url


def _keys(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    main(["keys", "list", "--json"])
    keys: list[dict[str, object]] = json.loads(capsys.readouterr().out)["keys"]
    return keys


def test_rotate_adds_a_next_key_and_retire_refuses_the_signing_one(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _keys(capsys) == []
    main(["keys", "rotate"])  # no key yet: this one is `next` all the same
    main(["keys", "rotate"])
    capsys.readouterr()
    listed = _keys(capsys)
    assert [key["state"] for key in listed] == ["next", "next"]
    assert all(key["published"] for key in listed)
    main(["keys", "retire", str(listed[1]["kid"])])
    assert "retired" in capsys.readouterr().out
    with pytest.raises(SystemExit) as failed:
        main(["keys", "retire", "no-such-kid"])
    assert failed.value.code == 1
    assert "no key" in capsys.readouterr().err


def test_create_admin_then_grant_a_role(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(STRONG_PASSWORD + "\n"))
    main(["accounts", "create-admin", "--email", "root@example.com", "--password-stdin"])
    assert "admin account" in capsys.readouterr().out
    main(["accounts", "grant-role", "ROOT@example.com", "auditor"])
    assert "admin, auditor" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("password\n"))
    with pytest.raises(SystemExit):
        main(["accounts", "create-admin", "--email", "two@example.com", "--password-stdin"])
    assert "common" in capsys.readouterr().err.lower()
    with pytest.raises(SystemExit):
        main(["accounts", "grant-role", "nobody@example.com", "admin"])
    with pytest.raises(SystemExit):
        main(["accounts", "grant-role", "root@example.com", "Not A Role"])
