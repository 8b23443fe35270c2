"""account security: idempotent replays bound to a credential, users' token version, outbox pruning

Idempotency keys get the credential their response is replayed to. The rows kept so far are
deleted: they hold responses in the clear (new API keys, rotated webhook secrets) and no
credential to bind them to. They are a 24 h cache; the cost is that a retry spanning the upgrade
runs once more.

Users get a token version: access tokens carry it, and a password change or reset or an email
change raises it, so the access tokens issued before stop working.

The email outbox is pruned by age (`callcov prune`): an index on its creation time.

Revision ID: 0007_acct
Revises: 0007_job_crashes
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007_acct"
down_revision: str | None = "0007_job_crashes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credential", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_version", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_email_messages_created_at", "email_messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_email_messages_created_at", table_name="email_messages")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("token_version")
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("credential")
