"""sessions last used

When each sign-in session was last continued (a refresh), for its owner's list of sessions.
Sessions stored before this revision take their newest refresh token's issue time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:50:06.887950
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # In place, never batch mode: on SQLite that copies the table and drops the original, and
    # the drop would delete every refresh token (ON DELETE CASCADE).
    op.add_column(
        "session_families", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        "UPDATE session_families SET last_used_at = (SELECT MAX(refresh_tokens.issued_at) "
        "FROM refresh_tokens WHERE refresh_tokens.family_id = session_families.id)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # in place (SQLite 3.35+), as above
        op.execute("ALTER TABLE session_families DROP COLUMN last_used_at")
    else:
        op.drop_column("session_families", "last_used_at")
