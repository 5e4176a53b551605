"""The users service's tables, as SQLAlchemy 2.0 typed models."""

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# One naming convention, so constraint names are the same on every backend and
# Alembic's autogenerate diffs stay stable.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
