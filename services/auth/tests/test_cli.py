"""`auth-service keys …`, `accounts …` and `purge`, run as an operator would."""

import asyncio
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from auth_service import kek
from auth_service.cli import main
from auth_service.clock import utcnow
from auth_service.jwk import generate_private_key, public_jwk
from auth_service.models import AuditEvent, SigningKey
from service_kit.db import Database
from testsupport.auth_service import STRONG_PASSWORD

# base64url thumbprints can begin with '-', which argparse would take for an option.
DASH_KID = "-Zm9vYmFyLWtpZC1iZWdpbm5pbmctd2l0aC1hLWRhc2g"


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    # The CLI reads its settings from the environment, as the service does.
    monkeypatch.setenv("AUTH_DATABASE_URL", database_url)
    monkeypatch.setenv("BCRYPT_COST", "4")
    monkeypatch.setenv("KEY_PUBLISH_DELAY_SECONDS", "600")
    return database_url


def _keys(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    main(["keys", "list", "--json"])
    listed: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["keys"]
    return {str(key["kid"]): key for key in listed}


def _add_next_key(database_url: str, kid: str) -> None:
    """A `next` key with a chosen kid, so a test does not depend on a random thumbprint."""

    async def add() -> None:
        database = Database(database_url)
        try:
            async with database.db_session() as session:
                private_key = generate_private_key()
                now = utcnow()
                session.add(
                    SigningKey(
                        kid=kid,
                        sequence=1000,
                        state="next",
                        public_jwk={**public_jwk(private_key), "kid": kid},
                        private_key_encrypted=b"not needed to retire or revoke",
                        created_at=now,
                        activates_at=now + timedelta(hours=1),
                    )
                )
                await session.commit()
        finally:
            await database.dispose()

    asyncio.run(add())


def _audit(database_url: str) -> list[tuple[str, dict[str, Any]]]:
    async def read() -> list[tuple[str, dict[str, Any]]]:
        database = Database(database_url)
        try:
            async with database.db_session() as session:
                rows = await session.scalars(select(AuditEvent).order_by(AuditEvent.occurred_at))
                return [(row.event, row.details) for row in rows]
        finally:
            await database.dispose()

    return asyncio.run(read())


def test_rotate_adds_a_next_key_and_retire_refuses_the_signing_one(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _keys(capsys) == {}
    main(["keys", "rotate"])  # no key yet: this one is `next` all the same
    main(["keys", "rotate"])
    _add_next_key(env, DASH_KID)
    capsys.readouterr()
    listed = _keys(capsys)
    assert [key["state"] for key in listed.values()] == ["next", "next", "next"]
    assert all(key["published"] for key in listed.values())
    main(["keys", "retire", DASH_KID])
    assert f"key {DASH_KID} retired" in capsys.readouterr().out
    assert _keys(capsys)[DASH_KID]["state"] == "retired"
    with pytest.raises(SystemExit) as failed:
        main(["keys", "retire", "no-such-kid"])
    assert failed.value.code == 1
    assert "no key" in capsys.readouterr().err
    with pytest.raises(SystemExit) as failed:
        main(["keys", "retire", "-no-such-kid-either"])
    assert failed.value.code == 1  # the command's refusal, not argparse's (2)
    assert "no key" in capsys.readouterr().err
    assert [event for event, _ in _audit(env)] == ["key_rotated", "key_rotated", "key_retired"]


def test_revoke_takes_a_key_out_of_the_key_set_at_once_and_is_audited(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_next_key(env, DASH_KID)
    main(["keys", "revoke", DASH_KID])
    assert f"key {DASH_KID} revoked" in capsys.readouterr().out
    revoked = _keys(capsys)[DASH_KID]
    assert revoked["state"] == "revoked"
    assert not revoked["published"]
    ((event, details),) = _audit(env)
    assert event == "key_revoked"
    assert details["kid"] == DASH_KID
    assert details["actor"].startswith("cli")
    with pytest.raises(SystemExit):
        main(["keys", "revoke", DASH_KID])
    assert "already revoked" in capsys.readouterr().err


def test_generate_kek_prints_a_key_the_production_rules_accept(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # It works even where the configured key is refused: that is when it is needed.
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("KEY_ENCRYPTION_KEY", "x")
    main(["keys", "generate-kek"])
    first = capsys.readouterr().out.strip()
    main(["keys", "generate-kek"])
    assert capsys.readouterr().out.strip() != first
    assert kek.problem_with(first) is None


def test_account_administration_is_audited_with_its_actor(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(STRONG_PASSWORD + "\n"))
    main(["accounts", "create-admin", "--email", "root@example.com", "--password-stdin"])
    assert "admin account" in capsys.readouterr().out
    main(["accounts", "grant-role", "ROOT@example.com", "auditor"])
    assert "admin, auditor" in capsys.readouterr().out
    main(["accounts", "revoke-role", "root@example.com", "admin"])
    assert "roles: auditor" in capsys.readouterr().out
    main(["accounts", "disable", " Root@Example.com "])
    assert "disabled" in capsys.readouterr().out
    main(["accounts", "enable", "root@example.com"])
    assert "enabled" in capsys.readouterr().out
    events = _audit(env)
    assert [event for event, _ in events] == [
        "registered",
        "role_granted",
        "role_granted",
        "role_revoked",
        "account_disabled",
        "account_enabled",
    ]
    assert all(details["actor"].startswith("cli") for _, details in events[1:])


def test_account_commands_refuse_what_they_cannot_do(
    env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("password\n"))
    with pytest.raises(SystemExit):
        main(["accounts", "create-admin", "--email", "two@example.com", "--password-stdin"])
    assert "common" in capsys.readouterr().err.lower()
    for argv in (
        ["accounts", "grant-role", "nobody@example.com", "admin"],
        ["accounts", "disable", "00000000-0000-0000-0000-000000000000"],
        ["accounts", "revoke-role", "root@example.com", "Not A Role"],
    ):
        with pytest.raises(SystemExit) as failed:
            main(argv)
        assert failed.value.code == 1


def test_purge_reports_what_it_deleted_and_is_audited(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["purge"])
    counts = json.loads(capsys.readouterr().out)
    assert counts == {
        "throttles": 0,
        "refresh_tokens": 0,
        "sessions": 0,
        "audit_events": 0,
        "skipped": False,
    }
    ((event, details),) = _audit(env)
    assert event == "data_purged"
    assert details["actor"].startswith("cli")
