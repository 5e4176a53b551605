"""`auth-service keys …`, `accounts …` and `purge`, run as an operator would."""

import asyncio
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from auth_service import kek
from auth_service.cli import main
from auth_service.clock import utcnow
from auth_service.jwk import generate_private_key, public_jwk
from auth_service.models import AuditEvent, SigningKey
from service_kit.db import Database
from testsupport.auth_service import STRONG_PASSWORD
from testsupport.client_keys import rsa_jwk

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
    main(["accounts", "delete", "root@example.com"])
    assert "deleted" in capsys.readouterr().out
    events = _audit(env)
    # The registration and its role's grant share a time: their order is the database's.
    assert sorted(event for event, _ in events[:2]) == ["registered", "role_granted"]
    assert [event for event, _ in events[2:]] == [
        "role_granted",
        "role_revoked",
        "account_disabled",
        "account_enabled",
        "account_deleted",
    ]
    assert all(details["actor"].startswith("cli") for _, details in events)
    assert "root@example.com" not in json.dumps(events)


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
        "client_secrets": 0,
        "client_assertions": 0,
        "authorization_codes": 0,
        "email_tokens": 0,
        "mail_messages": 0,
        "skipped": False,
    }
    ((event, details),) = _audit(env)
    assert event == "data_purged"
    assert details["actor"].startswith("cli")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    main(argv)
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    return printed


def test_clients_create_show_list_rotate_and_delete_print_json_and_are_audited(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    created = _json(
        capsys,
        [
            "clients",
            "create",
            "reports",
            "--type",
            "confidential",
            "--grant-types",
            "client_credentials",
            "--scopes",
            "users:read",
            "--audiences",
            "https://users.example,auth-platform",
            "--no-first-party",
            "--access-token-ttl",
            "300",
        ],
    )
    secret = created["client_secret"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert created["client_id"] == "reports"
    assert created["scopes"] == ["users:read"]
    assert created["audiences"] == ["https://users.example", "auth-platform"]
    assert (created["first_party"], created["access_token_ttl_seconds"]) == (False, 300)
    shown = _json(capsys, ["clients", "show", "reports"])
    assert secret not in json.dumps(shown)
    assert shown["grant_types"] == ["client_credentials"]
    assert len(shown["secrets"]) == 1
    rotated = _json(capsys, ["clients", "rotate-secret", "reports"])
    assert rotated["client_id"] == "reports"
    assert rotated["client_secret"] != secret
    assert rotated["previous_secret_expires_at"]  # the grace period's end
    assert len(_json(capsys, ["clients", "show", "reports"])["secrets"]) == 2
    public = _json(capsys, ["clients", "create", "mobile", "--type", "public"])
    assert "client_secret" not in public
    assert public["grant_types"] == ["password", "refresh_token"]
    listed = _json(capsys, ["clients", "list"])
    assert [client["client_id"] for client in listed["clients"]] == ["mobile", "reports"]
    deleted = _json(capsys, ["clients", "delete", "mobile"])
    assert deleted == {"client_id": "mobile", "deleted": True, "sessions_revoked": 0}
    events = _audit(env)
    assert [event for event, _ in events] == [
        "client_created",
        "client_secret_rotated",
        "client_created",
        "client_deleted",
    ]
    assert all(details["actor"].startswith("cli") for _, details in events)
    assert secret not in json.dumps(events)


def test_a_client_with_a_key_set_gets_no_secret(
    env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [rsa_jwk(key, "k1", alg="RS256")]}))
    created = _json(
        capsys,
        ["clients", "create", "keyed", "--type", "confidential", "--jwks-file", str(jwks_file)],
    )
    assert "client_secret" not in created
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert created["jwks"]["keys"][0]["kid"] == "k1"
    with pytest.raises(SystemExit):
        main(["clients", "rotate-secret", "keyed"])
    assert "private_key_jwt" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "bad id", "--type", "public"], "client_id"),
        (["create", "svc", "--type", "confidential", "--scopes", "admin"], "Unknown scope"),
        (["create", "svc", "--type", "confidential", "--grant-types", "implicit"], "grant type"),
        (["create", "app", "--type", "public", "--grant-types", "client_credentials"], "RFC 6749"),
        (
            ["create", "app", "--type", "public", "--redirect-uris", "http://app.example/cb"],
            "loopback",
        ),
        (["create", "svc", "--type", "confidential", "--jwks-file", "/no/such/file"], "cannot"),
        (["show", "nobody"], "no client"),
        (["rotate-secret", "nobody"], "no client"),
        (["delete", "nobody"], "no client"),
    ],
)
def test_client_commands_refuse_bad_input_with_a_message(
    env: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as failed:
        main(["clients", *argv])
    assert failed.value.code == 1
    assert message in capsys.readouterr().err
    assert _audit(env) == []


def test_a_client_id_is_registered_once_and_the_default_client_stays(
    env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    main(["clients", "create", "svc", "--type", "confidential"])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["clients", "create", "svc", "--type", "public"])
    assert "already exists" in capsys.readouterr().err
    private = tmp_path / "private.json"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private.write_text(json.dumps({"keys": [{**rsa_jwk(key, "k"), "d": "AQAB"}]}))
    with pytest.raises(SystemExit):
        main(["clients", "create", "k", "--type", "confidential", "--jwks-file", str(private)])
    assert "private key material" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["clients", "delete", "public"])
    assert "DEFAULT_CLIENT_ID" in capsys.readouterr().err
