"""Alembic's entry point: service_kit's migration environment, with the users service's tables."""

from service_kit.migrations import run_environment
from users_service.models import Base

run_environment(Base.metadata)
