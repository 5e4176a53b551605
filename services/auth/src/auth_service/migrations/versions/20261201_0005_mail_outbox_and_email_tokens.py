"""mail outbox and email tokens

The mail outbox (`mail_outbox`: messages written with the change that causes them, sent by
the service's delivery worker), the single-use tokens mailed to verify an address or reset a
password (`email_tokens`, hashes only), and `accounts.email_verified` (false for every
account that exists: none has verified its address yet).

Downgrading drops the outbox with any message not yet sent, and the tokens.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:58:47.044041
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(op.f("ix_mail_outbox_created_at"), "mail_outbox", ["created_at"])
    op.create_index(op.f("ix_mail_outbox_next_attempt_at"), "mail_outbox", ["next_attempt_at"])
    op.create_table(
        "email_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'reset_password')", name=op.f("ck_email_tokens_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_tokens_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_email_tokens")),
    )
    op.create_index(op.f("ix_email_tokens_account_id"), "email_tokens", ["account_id"])
    op.create_index(op.f("ix_email_tokens_expires_at"), "email_tokens", ["expires_at"])
    # Never batch mode here: on SQLite it copies `accounts` and drops the original, and the
    # drop deletes every session and token of every account (ON DELETE CASCADE). SQLite adds
    # (and, from 3.35, drops) a column in place.
    op.add_column(
        "accounts",
        sa.Column("email_verified", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE accounts DROP COLUMN email_verified")
    else:
        op.drop_column("accounts", "email_verified")
    op.drop_index(op.f("ix_email_tokens_expires_at"), table_name="email_tokens")
    op.drop_index(op.f("ix_email_tokens_account_id"), table_name="email_tokens")
    op.drop_table("email_tokens")
    op.drop_index(op.f("ix_mail_outbox_next_attempt_at"), table_name="mail_outbox")
    op.drop_index(op.f("ix_mail_outbox_created_at"), table_name="mail_outbox")
    op.drop_table("mail_outbox")
