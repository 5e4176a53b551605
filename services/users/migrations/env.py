"""Alembic environment: async engine, this service's own version table."""

import asyncio

from alembic import context
from sqlalchemy import Connection

from users_service import models
from users_service.db import create_engine
from users_service.migrations import VERSION_TABLE
from users_service.settings import Settings

target_metadata = models.Base.metadata
database_url = context.config.get_main_option("sqlalchemy.url") or Settings().database_url


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=database_url.startswith("sqlite"),
        compare_type=True,
        compare_server_default=True,
        **kwargs,
    )


def _run_with(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(database_url)
    async with engine.connect() as connection:
        await connection.run_sync(_run_with)
    await engine.dispose()


if context.is_offline_mode():
    _configure(url=database_url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
