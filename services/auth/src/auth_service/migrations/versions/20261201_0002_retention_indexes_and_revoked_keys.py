"""retention indexes and revoked signing keys

Indexes for the retention purge (throttle rows, refresh tokens and sessions by their
times), and `revoked` among the states a signing key may have (`keys revoke`).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 13:28:30.545442
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = "state IN ('next', 'active', 'retired', 'revoked')"
_STATES_BEFORE = "state IN ('next', 'active', 'retired')"


def upgrade() -> None:
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_throttles_last_failure_at"), ["last_failure_at"], unique=False
        )

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("session_families", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_families_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_families_revoked_at"), ["revoked_at"], unique=False
        )

    # Autogenerate does not compare CHECK constraints: written by hand.
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_signing_keys_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_signing_keys_state"), _STATES)


def downgrade() -> None:
    # The older schema knows no `revoked`: such keys go back as retired and unpublished
    # (published_until is already set), which they already are in effect.
    op.execute("UPDATE signing_keys SET state = 'retired' WHERE state = 'revoked'")
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_signing_keys_state"), type_="check")
        batch_op.create_check_constraint(op.f("ck_signing_keys_state"), _STATES_BEFORE)

    with op.batch_alter_table("session_families", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_families_revoked_at"))
        batch_op.drop_index(batch_op.f("ix_session_families_expires_at"))

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_expires_at"))

    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_throttles_last_failure_at"))
