"""initial schema: profiles

Revision ID: 0001
Revises:
Create Date: 2026-11-25 17:17:57.801725
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No foreign key on `id`: accounts live in the auth service's own database.
    op.create_table(
        "profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("bio", sa.String(length=500), nullable=True),
        sa.Column("avatar_url", sa.String(length=2048), nullable=True),
        # users_service.models.UtcDateTime stores a plain timezone-aware DateTime.
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profiles")),
    )
    op.create_index("ix_profiles_created_at_id", "profiles", ["created_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_profiles_created_at_id", table_name="profiles")
    op.drop_table("profiles")
