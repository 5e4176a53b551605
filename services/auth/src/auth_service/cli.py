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
from collections.abc import Sequence

from auth_service.migrations import HISTORY
from auth_service.settings import Settings
from service_kit.cli import ServiceCli, SubParsers


def _add_commands(commands: SubParsers) -> None:
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


def _run_command(args: argparse.Namespace) -> None:
    # Imported when a command runs: `serve` and `healthcheck` never load them.
    from auth_service import admin_commands

    admin_commands.run(args)


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


CLI = ServiceCli(
    Settings,
    "auth_service.main:create_app",
    HISTORY,
    __doc__ or "",
    add_commands=_add_commands,
    run_command=_run_command,
)


def main(argv: Sequence[str] | None = None) -> None:
    """`auth-service ARGS` (default: the process's arguments)."""
    CLI.main(_kid_as_operand(list(sys.argv[1:] if argv is None else argv)))
