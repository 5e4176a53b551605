"""`users-service`: serve the API and manage its database."""

import argparse
import sys
import urllib.request
from collections.abc import Sequence

from service_kit.logging import configure_logging
from users_service.settings import Settings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="users-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP API (uvicorn)")
    migrate = commands.add_parser("migrate", help="upgrade the database to a revision")
    migrate.add_argument("revision", nargs="?", default="head")
    downgrade = commands.add_parser("downgrade", help="downgrade the database to a revision")
    downgrade.add_argument("revision")
    commands.add_parser(
        "healthcheck", help="exit 0 when this service's /health answers (container probes)"
    )
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command != "healthcheck":
        configure_logging("users", settings.log_level)

    if args.command == "serve":
        import uvicorn  # heavy imports wait for the command that needs them

        uvicorn.run(
            "users_service.main:create_app",
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
        # Imported here: Alembic (and Mako) would cost the serving process ~8 MB of memory.
        from users_service import migrations

        if args.command == "migrate":
            migrations.upgrade(settings.database_url, args.revision)
        else:
            migrations.downgrade(settings.database_url, args.revision)
    elif args.command == "healthcheck":
        sys.exit(0 if _healthy(settings) else 1)


def _healthy(settings: Settings) -> bool:
    # Containers have no curl; this probe is the service's own, on its own port.
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    url = f"http://{host}:{settings.port}/users/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            status: int = response.status
            return status == 200
    except OSError:
        return False
