"""registered clients

The client registry: `clients`, their hashed `client_secrets`, and the `jti`s of client
assertions already accepted (`used_client_assertions`). No rows are written here: the
default public client (DEFAULT_CLIENT_ID) is created by the service at start, from its
settings. Sessions keep their `client_id` as they are; those stored without one continue
under the default client.

Downgrading drops the registry. Sessions started after the upgrade by clients that named
none carry the default client's id, so under the older code such a client must then name
it to refresh.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 14:04:16.834413
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("grant_types", sa.String(length=256), nullable=False),
        sa.Column("scopes", sa.String(length=1024), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("access_token_ttl_seconds", sa.Integer(), nullable=True),
        sa.Column("first_party", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("type IN ('public', 'confidential')", name=op.f("ck_clients_type")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    op.create_table(
        "client_secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_secrets_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_secrets")),
    )
    with op.batch_alter_table("client_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_secrets_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_client_secrets_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "used_client_assertions",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_used_client_assertions_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_used_client_assertions")),
    )
    with op.batch_alter_table("used_client_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_used_client_assertions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("used_client_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_client_assertions_expires_at"))

    op.drop_table("used_client_assertions")
    with op.batch_alter_table("client_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_secrets_expires_at"))
        batch_op.drop_index(batch_op.f("ix_client_secrets_client_id"))

    op.drop_table("client_secrets")
    op.drop_table("clients")
