"""A PostgreSQL server of a test suite's own, which it may stop and start at will."""

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

POSTGRES_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
# PostgreSQL refuses to run as root: its tools run as the `postgres` system user.
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, run as the `postgres` system user."""

    data_dir: Path
    socket_dir: Path
    port: int
    bin_dir: Path

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - PostgreSQL's own tool, fixed arguments
            [RUNUSER, "-u", "postgres", "--", str(self.bin_dir / "pg_ctl"), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("start", "-w", "-D", str(self.data_dir), "-o", options, "-l", str(self.log))

    def stop(self) -> None:
        self._pg_ctl("stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    @property
    def log(self) -> Path:
        return self.socket_dir / "postgres.log"

    def create_database(self, name: str) -> str:
        subprocess.run(  # noqa: S603
            [
                str(self.bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def private_postgres_server() -> Iterator[PrivatePostgres]:
    """initdb a cluster in a temporary folder, start it, and remove it all afterwards."""
    if not POSTGRES_BIN or not Path(RUNUSER).exists():
        raise RuntimeError("needs PostgreSQL's server binaries (Debian's postgresql package)")
    workdir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    shutil.chown(workdir, "postgres")
    data_dir = workdir / "data"
    subprocess.run(  # noqa: S603 - PostgreSQL's initdb, as its system user
        [
            RUNUSER,
            "-u",
            "postgres",
            "--",
            str(POSTGRES_BIN[-1] / "initdb"),
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = PrivatePostgres(data_dir, workdir, _free_port(), POSTGRES_BIN[-1])
    server.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), 1).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
