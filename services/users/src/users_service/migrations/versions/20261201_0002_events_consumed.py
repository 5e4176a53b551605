"""events consumed: processed event ids and deny entries

The auth service's events, as this service applies them (`events.py`): the ids of those
already applied (`processed_events`, so a second delivery changes nothing), and the
sessions and accounts whose access tokens are refused until they expire (`deny_entries`).

Downgrading drops both: revoked tokens are then accepted until their `exp`, and events
delivered again would be applied again (harmless: each is idempotent on its own).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:55:40.828966
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deny_entries",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('session', 'subject')", name=op.f("ck_deny_entries_kind")),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_deny_entries")),
    )
    with op.batch_alter_table("deny_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deny_entries_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "processed_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processed_events")),
    )
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processed_events_processed_at"), ["processed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_events_processed_at"))

    op.drop_table("processed_events")
    with op.batch_alter_table("deny_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deny_entries_expires_at"))

    op.drop_table("deny_entries")
