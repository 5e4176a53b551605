"""`auth-service`: serve the API and manage its database."""

import argparse
from collections.abc import Sequence

import uvicorn

from auth_service import migrations
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
    args = parser.parse_args(argv)

    settings = Settings()
    configure_logging("auth", settings.log_level)
    if args.command == "serve":
        uvicorn.run(
            "auth_service.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
            server_header=False,
        )
    elif args.command == "migrate":
        migrations.upgrade(settings.database_url, args.revision)
    elif args.command == "downgrade":
        migrations.downgrade(settings.database_url, args.revision)
