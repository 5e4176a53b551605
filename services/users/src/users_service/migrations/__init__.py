"""The users service's schema history (Alembic): `env.py`, `script.py.mako` and `versions/`
beside this file, run by `service_kit.migrations` (`users-service migrate`)."""

from service_kit.migrations import MigrationHistory

HISTORY = MigrationHistory(package="users_service", version_table="users_alembic_version")
