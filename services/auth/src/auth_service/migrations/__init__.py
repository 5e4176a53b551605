"""The auth service's schema history (Alembic): `env.py`, `script.py.mako` and `versions/`
beside this file, run by `service_kit.migrations` (`auth-service migrate`)."""

from service_kit.migrations import MigrationHistory

HISTORY = MigrationHistory(package="auth_service", version_table="auth_alembic_version")
