"""Alembic's entry point: service_kit's migration environment, with the auth service's tables."""

from auth_service.models import Base
from service_kit.migrations import run_environment

run_environment(Base.metadata)
