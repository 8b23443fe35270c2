"""billing integrity: plan changes (segments of a period), refunded usage, per-account overage cap

Revision ID: 0008_billing_integrity
Revises: 0007_acct
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import callcov.kit.time

revision: str = "0008_billing_integrity"
down_revision: str | None = "0007_acct"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("at", callcov.kit.time.UTCDateTime(timezone=True), nullable=False),
        sa.Column("tier_before", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tier_after", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_plan_changes_user_at", "plan_changes", ["user_id", "at"], unique=False)
    op.create_index(op.f("ix_plan_changes_user_id"), "plan_changes", ["user_id"], unique=False)
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("voided_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overage_cap_minutes", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("overage_cap_minutes")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_column("voided_at")
    op.drop_index(op.f("ix_plan_changes_user_id"), table_name="plan_changes")
    op.drop_index("ix_plan_changes_user_at", table_name="plan_changes")
    op.drop_table("plan_changes")
