"""Databases for tests: throwaway PostgreSQL databases or SQLite files, and a cuttable proxy."""

import asyncio
import concurrent.futures
import os
import socket
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import inspect, make_url
from sqlalchemy.ext.asyncio import create_async_engine

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _admin_dsn() -> str:
    # asyncpg wants a plain postgresql:// URL, whatever driver the caller named.
    return make_url(admin_url()).set(drivername="postgresql").render_as_string(False)


def port_open(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), 2):
            return True
    except OSError:
        return False


def admin_execute(*statements: str) -> None:
    """Run statements on the server's admin database, from sync or async tests alike."""
    # A thread of its own: async tests call this with their event loop already running.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin_execute_async(*statements)).result()


async def _admin_execute_async(*statements: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def table_names(database_url: str) -> set[str]:
    """The tables a database holds now (for migration tests), from sync or async tests alike."""

    async def names() -> set[str]:
        engine = create_async_engine(database_url)
        async with engine.connect() as connection:
            found = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await engine.dispose()
        return found

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, names()).result()


class DatabaseFactory:
    """Creates empty databases on one backend and drops them all at the end of the run."""

    def __init__(self, backend: str, scratch: Path) -> None:
        self.backend = backend
        self._scratch = scratch
        self._postgres_names: list[str] = []

    def create(self) -> str:
        """A fresh, empty database; its SQLAlchemy async URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._scratch / name}.sqlite3"
        admin_execute(f'CREATE DATABASE "{name}"')
        self._postgres_names.append(name)
        url = make_url(admin_url()).set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database this factory created, several at a time.

        Each DROP DATABASE waits for a checkpoint, which simultaneous requests may share: a
        unit run's few hundred databases took ~30 s one after another (40 here: 5.0 s one
        after another, 3.4 s eight at a time).
        """
        drops = [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in self._postgres_names]
        if drops:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                pool.submit(asyncio.run, _admin_execute_in_parallel(drops)).result()


async def _admin_execute_in_parallel(statements: list[str], connections: int = 8) -> None:
    """Run independent statements over `connections` admin connections at once."""
    await asyncio.gather(
        *(
            _admin_execute_async(*statements[i::connections])
            for i in range(min(connections, len(statements)))
        )
    )


class TcpProxy:
    """A TCP forwarder to a database that a test can cut and restore, to play an outage."""

    def __init__(self, database_url: str) -> None:
        self._url = make_url(database_url)
        self.target = (self._url.host or "127.0.0.1", self._url.port or 5432)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()

    @property
    def database_url(self) -> str:
        """The database's URL, through this proxy (known once it has started)."""
        assert self.port, "start the proxy first"
        return self._url.set(host="127.0.0.1", port=self.port).render_as_string(False)

    async def __aenter__(self) -> "TcpProxy":
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None and self._server.is_serving():
            await self.cut()

    async def start(self) -> None:
        """Listen (again, on the same port after a cut)."""
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and drop every open connection."""
        assert self._server is not None
        self._server.close()
        for transport in list(self._transports):
            transport.abort()
        await self._server.wait_closed()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._transports.update((writer.transport, upstream_writer.transport))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()
                self._transports.discard(sink.transport)

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
