"""rubrics: accounts' own scoring rubrics and their immutable versions (issue 14)

Revision ID: 0010_rubrics
Revises: 0009_pii_redaction
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import callcov.kit.time

revision: str = "0010_rubrics"
down_revision: str | None = "0009_pii_redaction"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rubrics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("archived_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_rubrics_scope_created", "rubrics", ["user_id", "livemode", "created_at"], unique=False
    )
    op.create_index(op.f("ix_rubrics_user_id"), "rubrics", ["user_id"], unique=False)
    op.create_table(
        "rubric_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rubric_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", callcov.kit.time.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["rubric_id"], ["rubrics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rubric_id", "version", name="uq_rubric_versions_rubric_version"),
    )


def downgrade() -> None:
    op.drop_table("rubric_versions")
    op.drop_index(op.f("ix_rubrics_user_id"), table_name="rubrics")
    op.drop_index("ix_rubrics_scope_created", table_name="rubrics")
    op.drop_table("rubrics")
