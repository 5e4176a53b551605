"""Every service's command line: the chassis's commands, a service's own through the hook,
and a health probe that loads neither uvicorn nor Alembic."""

import argparse
import http.server
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pytest

from service_kit.cli import CommandError, ServiceCli, SubParsers
from service_kit.migrations import MigrationHistory
from testsupport.example_service import ExampleSettings
from testsupport.stack import free_port


class RecordedHistory(MigrationHistory):
    """A history that records what it was asked to do instead of running Alembic."""

    def __init__(self) -> None:
        super().__init__(package="example", version_table="example_alembic_version")
        object.__setattr__(self, "calls", [])

    def upgrade(self, database_url: str, revision: str = "head") -> None:
        self.calls.append(("upgrade", revision))  # type: ignore[attr-defined]

    def downgrade(self, database_url: str, revision: str) -> None:
        self.calls.append(("downgrade", revision))  # type: ignore[attr-defined]


def _add_commands(commands: SubParsers) -> None:
    greet = commands.add_parser("greet")
    greet.add_argument("name")


def _run_command(args: argparse.Namespace) -> None:
    if args.name == "nobody":
        raise CommandError("there is nobody to greet")
    print(f"hello {args.name}")


def _cli(history: MigrationHistory) -> ServiceCli:
    return ServiceCli(
        ExampleSettings,
        "testsupport.example_service:example_app",
        history,
        "The example service.",
        add_commands=_add_commands,
        run_command=_run_command,
    )


@pytest.fixture
def health_server() -> Iterator[int]:
    """A server on a free port whose /example/health answers 200 (and anything else 404)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/example/health" else 404)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_migrate_and_downgrade_run_the_services_history() -> None:
    history = RecordedHistory()
    cli = _cli(history)
    cli.main(["migrate"])
    cli.main(["migrate", "0001"])
    cli.main(["downgrade", "base"])
    assert history.calls == [("upgrade", "head"), ("upgrade", "0001"), ("downgrade", "base")]  # type: ignore[attr-defined]


def test_a_services_own_command_runs_and_its_refusal_is_exit_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli = _cli(RecordedHistory())
    cli.main(["greet", "ada"])
    assert capsys.readouterr().out == "hello ada\n"
    with pytest.raises(SystemExit) as refused:
        cli.main(["greet", "nobody"])
    assert refused.value.code == 1
    assert capsys.readouterr().err == "example-service: there is nobody to greet\n"


def test_healthcheck_is_0_when_health_answers_and_1_when_nothing_listens(
    health_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = _cli(RecordedHistory())
    monkeypatch.setenv("EXAMPLE_HOST", "0.0.0.0")  # noqa: S104 - probed on 127.0.0.1
    monkeypatch.setenv("EXAMPLE_PORT", str(health_server))
    with pytest.raises(SystemExit) as healthy:
        cli.main(["healthcheck"])
    assert healthy.value.code == 0
    monkeypatch.setenv("EXAMPLE_PORT", str(free_port()))
    with pytest.raises(SystemExit) as unhealthy:
        cli.main(["healthcheck"])
    assert unhealthy.value.code == 1


def test_healthcheck_loads_neither_uvicorn_nor_alembic_nor_the_app() -> None:
    # A container probes its health every few seconds with a fresh process: it must stay light.
    probe = textwrap.dedent(
        f"""
        import sys
        from typing import ClassVar
        from pydantic import Field
        from service_kit.cli import ServiceCli
        from service_kit.migrations import MigrationHistory
        from service_kit.settings import ServiceSettings

        class Settings(ServiceSettings):
            service_name: ClassVar[str] = "example"
            host: str = "127.0.0.1"
            port: int = Field({free_port()})
            database_url: str = ""

        history = MigrationHistory("example", "example_alembic_version")
        try:
            ServiceCli(Settings, "example:create_app", history, "").main(["healthcheck"])
        except SystemExit:
            pass
        heavy = {{"uvicorn", "alembic", "fastapi", "sqlalchemy"}} & set(sys.modules)
        print(sorted(heavy))
        """
    )
    loaded = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip() == "[]", loaded.stderr
