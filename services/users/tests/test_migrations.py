"""The users service's Alembic history: agrees with the models, and goes both ways."""

from testsupport.migrations import MigrationHistoryTests
from users_service.migrations import HISTORY
from users_service.models import Base


class TestUsersHistory(MigrationHistoryTests):
    history = HISTORY
    metadata = Base.metadata
