"""Every service's command line: `serve`, `migrate`, `downgrade`, `revision`, `healthcheck`,
and whatever commands the service adds.

Each command imports what it needs when it runs: uvicorn, Alembic or the service's own
commands would cost a container's health probe (`healthcheck`, a fresh process every few
seconds) several seconds and tens of megabytes.
"""

import argparse
import socket
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service_kit.logging import configure_logging
from service_kit.migrations import MigrationHistory
from service_kit.settings import ServiceSettings

HEALTHCHECK_TIMEOUT_SECONDS = 3
SubParsers = Any  # argparse's `_SubParsersAction`, which it does not export


class CommandError(Exception):
    """A command could not do what was asked: printed as `<prog>: <message>`, exit status 1."""


@dataclass(frozen=True)
class ServiceCli:
    """A service's `main`: the chassis's commands and the service's own (`add_commands`).

    `app_factory` is the `module:function` uvicorn imports in the serving process.
    `add_commands(subparsers)` declares the service's commands; `run_command(args)` runs
    one of them, importing what it needs, loading the settings itself (a command may need
    to run where the settings would be refused) and raising `CommandError` on refusal.
    """

    settings: type[ServiceSettings]
    app_factory: str
    migrations: MigrationHistory
    description: str
    add_commands: Callable[[SubParsers], None] | None = None
    run_command: Callable[[argparse.Namespace], None] | None = None

    @property
    def prog(self) -> str:
        return f"{self.settings.service_name}-service"

    def parser(self) -> argparse.ArgumentParser:
        """The commands and their arguments."""
        parser = argparse.ArgumentParser(
            prog=self.prog,
            description=self.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("serve", help="run the HTTP API (uvicorn)")
        migrate = commands.add_parser("migrate", help="upgrade the database to a revision")
        migrate.add_argument("revision", nargs="?", default="head")
        downgrade = commands.add_parser("downgrade", help="downgrade the database to a revision")
        downgrade.add_argument("revision")
        revision = commands.add_parser(
            "revision", help="write a new migration (development: the models are the source)"
        )
        revision.add_argument("-m", "--message", required=True)
        revision.add_argument(
            "--autogenerate",
            action="store_true",
            help="diff the models against the database (migrated to head) to write it",
        )
        commands.add_parser(
            "healthcheck", help="exit 0 when this service's /health answers (container probes)"
        )
        if self.add_commands is not None:
            self.add_commands(commands)
        return parser

    def main(self, argv: Sequence[str] | None = None) -> None:
        """Run the command `argv` (default: the process's arguments) names."""
        args = self.parser().parse_args(argv)
        if args.command not in ("serve", "migrate", "downgrade", "revision", "healthcheck"):
            assert self.run_command is not None  # only the service's own commands get here
            try:
                self.run_command(args)
            except CommandError as exc:
                print(f"{self.prog}: {exc}", file=sys.stderr)
                sys.exit(1)
            return

        settings = self.settings()
        if args.command == "healthcheck":
            sys.exit(0 if healthy(settings) else 1)
        configure_logging(settings.service_name, settings.log_level)
        if args.command == "serve":
            serve(settings, self.app_factory)
        elif args.command == "migrate":
            self.migrations.upgrade(settings.database_url, args.revision)
        elif args.command == "downgrade":
            self.migrations.downgrade(settings.database_url, args.revision)
        else:
            self.migrations.revision(
                settings.database_url, args.message, autogenerate=args.autogenerate
            )


def serve(settings: ServiceSettings, app_factory: str) -> None:
    """uvicorn, as PID 1 of a container: graceful on SIGTERM, JSON logs only, no server header;
    WEB_CONCURRENCY worker processes on the one port, on the EVENT_LOOP."""
    import uvicorn

    options: dict[str, Any] = {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.web_concurrency,
        "loop": settings.event_loop,
        "log_config": None,
        "access_log": False,
        # The client's address comes from service_kit.client_address (TRUSTED_PROXIES),
        # the same rule under uvicorn and Lambda.
        "proxy_headers": False,
        "server_header": False,
        # No service speaks WebSocket: without this uvicorn imports wsproto or websockets
        # when installed (~1 MB each process).
        "ws": "none",
    }
    if settings.web_concurrency == 1:
        uvicorn.run(app_factory, **options)
        return
    # Several workers share a socket uvicorn makes itself, whose protocol number is 0: asyncio
    # then leaves Nagle's algorithm on for every connection it accepts (it sets TCP_NODELAY only
    # where the protocol says TCP), and each answer waited ~40 ms for the client's delayed ACK
    # (every endpoint at ~360 req/s, the CPU idle). Accepted sockets inherit the option.
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app_factory, **options)
    listening = config.bind_socket()
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[listening]).run()


def healthy(settings: ServiceSettings) -> bool:
    """Whether the service's `/health` answers 200 on its own port (containers have no curl)."""
    any_address = settings.host in ("0.0.0.0", "::")  # noqa: S104 - what a container binds
    host = "127.0.0.1" if any_address else settings.host
    url = f"http://{host}:{settings.port}{settings.route_prefix}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTHCHECK_TIMEOUT_SECONDS) as response:
            status: int = response.status
            return status == 200
    except OSError:
        return False
