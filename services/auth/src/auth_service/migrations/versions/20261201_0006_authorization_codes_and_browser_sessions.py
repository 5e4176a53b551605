"""authorization codes and browser sign-in sessions

The authorization code flow (`GET /auth/authorize`): `authorization_codes`, each stored as
its SHA-256 only, with the request it answers; and the hosted sign-in page's own sessions,
rows of `session_families` of kind `browser` named by the SHA-256 of their cookie. Every
existing session is of kind `token`.

Downgrading drops the codes and the browser sessions (their cookies then name nothing).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:50:09.003597
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN and a unique index, never a batch copy: on SQLite, recreating
    # session_families would cascade-delete every refresh token.
    op.add_column(
        "session_families",
        sa.Column("kind", sa.String(length=8), server_default="token", nullable=False),
    )
    op.add_column(
        "session_families", sa.Column("cookie_hash", sa.LargeBinary(length=32), nullable=True)
    )
    op.create_index(
        op.f("ix_session_families_cookie_hash"), "session_families", ["cookie_hash"], unique=True
    )
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=1024), nullable=False),
        sa.Column("nonce", sa.String(length=512), nullable=True),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("browser_session_id", sa.Uuid(), nullable=False),
        sa.Column("auth_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_session_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_authorization_codes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["browser_session_id"],
            ["session_families.id"],
            name=op.f("fk_authorization_codes_browser_session_id_session_families"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_authorization_codes_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issued_session_id"],
            ["session_families.id"],
            name=op.f("fk_authorization_codes_issued_session_id_session_families"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authorization_codes")),
    )
    op.create_index(
        op.f("ix_authorization_codes_expires_at"), "authorization_codes", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_authorization_codes_expires_at"), table_name="authorization_codes")
    op.drop_table("authorization_codes")
    op.execute("DELETE FROM session_families WHERE kind = 'browser'")
    op.drop_index(op.f("ix_session_families_cookie_hash"), table_name="session_families")
    # ALTER TABLE DROP COLUMN (SQLite 3.35+), not a batch copy (see the upgrade).
    op.drop_column("session_families", "cookie_hash")
    op.drop_column("session_families", "kind")
