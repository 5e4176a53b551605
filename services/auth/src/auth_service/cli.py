"""`auth-service`: serve the API, manage its database, its signing keys and its accounts.

auth-service keys list [--json]
auth-service keys rotate            # a `next` key, signing after KEY_PUBLISH_DELAY_SECONDS
auth-service keys retire KID
auth-service keys revoke KID        # a compromised key: unpublished and replaced at once
auth-service keys generate-kek      # a fresh KEY_ENCRYPTION_KEY
auth-service accounts create-admin --email EMAIL [--username NAME] --password-stdin
auth-service accounts grant-role|revoke-role ACCOUNT ROLE
auth-service accounts disable|enable ACCOUNT      # ACCOUNT: id, email or username
auth-service purge                  # delete what the retention settings no longer keep
"""

import argparse
import sys
import urllib.request
from collections.abc import Sequence

from auth_service.settings import Settings
from service_kit.logging import configure_logging


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="auth-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    migrate = commands.add_parser("migrate", help="upgrade the database to a revision")
    migrate.add_argument("revision", nargs="?", default="head")
    downgrade = commands.add_parser("downgrade", help="downgrade the database to a revision")
    downgrade.add_argument("revision")
    commands.add_parser(
        "healthcheck", help="exit 0 when this service's /health answers (container probes)"
    )
    key_commands = commands.add_parser("keys", help="list, rotate and retire signing keys")
    key_actions = key_commands.add_subparsers(dest="action", required=True)
    key_list = key_actions.add_parser("list", help="every key, its state and its times")
    key_list.add_argument("--json", action="store_true", help="one JSON document")
    key_actions.add_parser(
        "rotate", help="add a `next` key: published now, signing once the publish delay is over"
    )
    key_retire = key_actions.add_parser(
        "retire", help="retire a key (stays published until its tokens have expired)"
    )
    key_retire.add_argument("kid")
    key_revoke = key_actions.add_parser(
        "revoke", help="a compromised key: out of the key set and replaced at once"
    )
    key_revoke.add_argument("kid")
    key_actions.add_parser("generate-kek", help="print a fresh KEY_ENCRYPTION_KEY")
    account_commands = commands.add_parser(
        "accounts", help="create an admin; grant or revoke a role; disable or enable"
    )
    account_actions = account_commands.add_subparsers(dest="action", required=True)
    create_admin = account_actions.add_parser("create-admin", help="an account with role admin")
    create_admin.add_argument("--email", required=True)
    create_admin.add_argument("--username")
    create_admin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else it is prompted for)",
    )
    for action, help_text in (
        ("grant-role", "add a role to an account"),
        ("revoke-role", "remove a role from an account"),
    ):
        role_change = account_actions.add_parser(action, help=help_text)
        role_change.add_argument("login", help="account id, email or username")
        role_change.add_argument("role")
    for action, help_text in (
        ("disable", "refuse every sign-in and refresh; revoke every session"),
        ("enable", "let a disabled account sign in again"),
    ):
        account_action = account_actions.add_parser(action, help=help_text)
        account_action.add_argument("login", help="account id, email or username")
    commands.add_parser(
        "purge", help="delete expired throttles, sessions, refresh tokens and old audit events"
    )
    args = parser.parse_args(_kid_as_operand(list(sys.argv[1:] if argv is None else argv)))

    if args.command == "keys" and args.action == "generate-kek":
        # Before the settings: an operator replacing a refused key must be able to run it.
        from auth_service import kek

        print(kek.generate())
        return
    settings = Settings()
    if args.command != "healthcheck":
        configure_logging("auth", settings.log_level)

    if args.command == "serve":
        import uvicorn

        uvicorn.run(
            "auth_service.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            # The client's address comes from service_kit.client_address (TRUSTED_PROXIES),
            # the same rule under uvicorn and Lambda.
            proxy_headers=False,
            server_header=False,
        )
    elif args.command in ("migrate", "downgrade"):
        from auth_service import migrations

        change_schema = migrations.upgrade if args.command == "migrate" else migrations.downgrade
        change_schema(settings.database_url, args.revision)
    elif args.command == "healthcheck":
        sys.exit(0 if _healthy(settings) else 1)
    else:
        from auth_service import admin_commands

        try:
            admin_commands.run(settings, args)
        except admin_commands.CommandError as exc:
            print(f"auth-service: {exc}", file=sys.stderr)
            sys.exit(1)


def _kid_as_operand(argv: list[str]) -> list[str]:
    """`keys retire|revoke KID`: a kid may begin with '-' (a base64url thumbprint can),
    which argparse would read as an option; a `--` before it makes it the operand."""
    if (
        len(argv) == 3
        and argv[0] == "keys"
        and argv[1] in ("retire", "revoke")
        and argv[2].startswith("-")
        and argv[2] not in ("-h", "--help", "--")
    ):
        return [*argv[:2], "--", argv[2]]
    return argv


def _healthy(settings: Settings) -> bool:
    # Containers have no curl; this probe is the service's own, on its own port.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    url = f"http://{host}:{settings.port}/auth/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False
