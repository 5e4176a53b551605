"""The auth service's Alembic history: agrees with the models, and goes both ways."""

from auth_service.migrations import HISTORY
from auth_service.models import Base
from testsupport.migrations import MigrationHistoryTests


class TestAuthHistory(MigrationHistoryTests):
    history = HISTORY
    metadata = Base.metadata
