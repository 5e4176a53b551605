"""`auth-service`: serve the API, manage its database, its signing keys and its accounts.

auth-service keys list [--json]
auth-service keys rotate            # a `next` key, signing after KEY_PUBLISH_DELAY_SECONDS
auth-service keys retire KID
auth-service keys revoke KID        # a compromised key: unpublished and replaced at once
auth-service keys generate-kek      # a fresh KEY_ENCRYPTION_KEY
auth-service accounts create-admin --email EMAIL [--username NAME] --password-stdin
auth-service accounts grant-role|revoke-role ACCOUNT ROLE
auth-service accounts disable|enable|delete ACCOUNT      # ACCOUNT: id, email or username
auth-service clients create CLIENT_ID --type public|confidential [--grant-types G,...]
    [--scopes S,...] [--redirect-uris URL,...] [--audiences A,...] [--jwks-file PATH]
    [--first-party | --no-first-party] [--access-token-ttl SECONDS]
auth-service clients list | show CLIENT_ID | rotate-secret CLIENT_ID | delete CLIENT_ID
auth-service purge                  # delete what the retention settings no longer keep
"""

import argparse
import sys
from collections.abc import Sequence
from typing import Any

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
        "accounts", help="create an admin; grant or revoke a role; disable, enable or delete"
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
        ("delete", "erase an account: its sessions end, its audit events keep ids only"),
    ):
        account_action = account_actions.add_parser(action, help=help_text)
        account_action.add_argument("login", help="account id, email or username")
    _add_client_commands(commands)
    commands.add_parser(
        "purge", help="delete expired throttles, sessions, refresh tokens and old audit events"
    )


def _run_command(args: argparse.Namespace) -> None:
    # Imported when a command runs: `serve` and `healthcheck` never load them.
    from auth_service import admin_commands

    admin_commands.run(args)


def _comma_separated(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _add_client_commands(commands: Any) -> None:
    client_commands = commands.add_parser(
        "clients", help="register, list, show, rotate the secret of, and delete clients"
    )
    client_actions = client_commands.add_subparsers(dest="action", required=True)
    create = client_actions.add_parser(
        "create", help="register a client; prints it as JSON, with its secret (shown once)"
    )
    create.add_argument("client_id", metavar="CLIENT_ID")
    create.add_argument("--type", required=True, choices=["public", "confidential"])
    create.add_argument(
        "--grant-types",
        type=_comma_separated,
        metavar="G,...",
        help="authorization_code, client_credentials, password, refresh_token (default: "
        "client_credentials for a confidential client, password,refresh_token for a public one)",
    )
    create.add_argument(
        "--scopes",
        type=_comma_separated,
        metavar="S,...",
        help="among SCOPES (default: none for a confidential client, DEFAULT_CLIENT_SCOPES "
        "for a public one)",
    )
    create.add_argument(
        "--redirect-uris",
        type=_comma_separated,
        default=[],
        metavar="URL,...",
        help="exact redirect URIs: https, or http to a loopback address (authorization_code "
        "needs one; logout's post_logout_redirect_uri must be one too)",
    )
    create.add_argument(
        "--audiences",
        type=_comma_separated,
        default=[],
        metavar="A,...",
        help="the `aud` its tokens may carry, the first by default "
        "(default: ACCESS_TOKEN_AUDIENCE)",
    )
    create.add_argument(
        "--jwks-file",
        metavar="PATH",
        help="a JSON key set of its public keys: it authenticates with private_key_jwt, "
        "and has no secret",
    )
    create.add_argument(
        "--first-party",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one of the platform's own clients (default) or another party's",
    )
    create.add_argument(
        "--access-token-ttl",
        type=int,
        metavar="SECONDS",
        help="shorter access tokens than ACCESS_TOKEN_TTL_SECONDS for this client",
    )
    client_actions.add_parser("list", help="every client, as JSON")
    for action, help_text in (
        ("show", "one client, as JSON (its secrets' times, never a secret)"),
        ("rotate-secret", "a new secret, shown once; the old one works for the grace period"),
        ("delete", "delete a client and revoke every session it started"),
    ):
        client_action = client_actions.add_parser(action, help=help_text)
        client_action.add_argument("client_id", metavar="CLIENT_ID")


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
