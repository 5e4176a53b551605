"""`auth-service`: serve the API, manage its database, its signing keys and its accounts.

auth-service keys list [--json]
auth-service keys rotate            # a `next` key, signing after KEY_PUBLISH_DELAY_SECONDS
auth-service keys retire KID
auth-service accounts create-admin --email EMAIL [--username NAME] --password-stdin
auth-service accounts grant-role EMAIL_OR_USERNAME ROLE
"""

import argparse

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
    account_commands = commands.add_parser("accounts", help="create an admin, grant a role")
    account_actions = account_commands.add_subparsers(dest="action", required=True)
    create_admin = account_actions.add_parser("create-admin", help="an account with role admin")
    create_admin.add_argument("--email", required=True)
    create_admin.add_argument("--username")
    create_admin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (else it is prompted for)",
    )
    grant = account_actions.add_parser("grant-role", help="add a role to an account")
    grant.add_argument("login", help="email or username")
    grant.add_argument("role")


def _run_command(args: argparse.Namespace) -> None:
    # Imported when a command runs: `serve` and `healthcheck` never load them.
    from auth_service import admin_commands

    admin_commands.run(args)


CLI = ServiceCli(
    Settings,
    "auth_service.main:create_app",
    HISTORY,
    __doc__ or "",
    add_commands=_add_commands,
    run_command=_run_command,
)
main = CLI.main
