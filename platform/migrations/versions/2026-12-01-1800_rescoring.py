"""rescoring: re-scorings of stored analyses, bulk runs, results versions; usage of retranscriptions

Revision ID: 0011_rescoring
Revises: 0010_rubrics
Create Date: 2026-12-01 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import callcov.kit.time

revision: str = "0011_rescoring"
down_revision: str | None = "0010_rubrics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = callcov.kit.time.UTCDateTime(timezone=True)


def _str(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _runs() -> None:
    op.create_table(
        "rescore_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("rubric_id", _str(64), nullable=False),
        sa.Column("rubric_version", _str(32), nullable=True),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("retranscribe", sa.Boolean(), nullable=False),
        sa.Column("webhook", sa.Boolean(), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("selected", sa.Integer(), nullable=False),
        sa.Column("cursor_created_at", TIME, nullable=True),
        sa.Column("cursor_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_rescore_runs_scope_created", "rescore_runs", ["user_id", "livemode", "created_at"], unique=False
    )
    op.create_index(op.f("ix_rescore_runs_user_id"), "rescore_runs", ["user_id"], unique=False)


def _rescores() -> None:
    op.create_table(
        "rescores",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("analysis_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=True),
        sa.Column("rubric_id", _str(64), nullable=False),
        sa.Column("rubric_version", _str(32), nullable=True),
        sa.Column("analysis_level", _str(16), nullable=False),
        sa.Column("retranscribe", sa.Boolean(), nullable=False),
        sa.Column("webhook", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("status", _str(16), nullable=False),
        sa.Column("error_message", _str(2000), nullable=True),
        sa.Column("results_version", sa.Integer(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("completed_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["analyses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["rescore_runs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "analysis_id", name="uq_rescores_run_analysis"),
    )
    op.create_index("ix_rescores_analysis_created", "rescores", ["analysis_id", "created_at"], unique=False)
    op.create_index("ix_rescores_run_status", "rescores", ["run_id", "status"], unique=False)
    op.create_index(op.f("ix_rescores_user_id"), "rescores", ["user_id"], unique=False)
    op.create_table(
        "analysis_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("analysis_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rubric_id", _str(64), nullable=False),
        sa.Column("rubric_version", _str(32), nullable=True),
        sa.Column("rescore_id", sa.Uuid(), nullable=True),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["analysis_id"], ["analyses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("analysis_id", "version", name="uq_analysis_results_version"),
    )


def _usage_table_without_unique() -> sa.Table:
    """usage_records as it is, less the unnamed UNIQUE(analysis_id) (SQLite recreates the table)."""
    return sa.Table(
        "usage_records",
        sa.MetaData(),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("analysis_id", sa.Uuid(), nullable=False),
        sa.Column("minutes", sa.Float(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("reported_at", TIME, nullable=True),
        sa.Column("voided_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["analysis_id"], ["analyses.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("ix_usage_records_user_id", "user_id"),
        sa.Index("ix_usage_records_user_created", "user_id", "created_at"),
    )


def _usage_of_retranscriptions() -> None:
    rescore = sa.Column("rescore_id", sa.Uuid(), nullable=True)
    if op.get_bind().dialect.name == "sqlite":
        table = _usage_table_without_unique()
        with op.batch_alter_table("usage_records", copy_from=table, recreate="always") as batch_op:
            batch_op.add_column(rescore)
            batch_op.create_unique_constraint("uq_usage_records_rescore_id", ["rescore_id"])
            batch_op.create_foreign_key(
                "fk_usage_records_rescore_id", "rescores", ["rescore_id"], ["id"], ondelete="CASCADE"
            )
    else:
        op.drop_constraint("usage_records_analysis_id_key", "usage_records", type_="unique")
        op.add_column("usage_records", rescore)
        op.create_unique_constraint("uq_usage_records_rescore_id", "usage_records", ["rescore_id"])
        op.create_foreign_key(
            "fk_usage_records_rescore_id",
            "usage_records",
            "rescores",
            ["rescore_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.create_index(
        "uq_usage_records_submission",
        "usage_records",
        ["analysis_id"],
        unique=True,
        postgresql_where=sa.text("rescore_id IS NULL"),
        sqlite_where=sa.text("rescore_id IS NULL"),
    )


def upgrade() -> None:
    _runs()
    _rescores()
    _usage_of_retranscriptions()


def downgrade() -> None:
    op.drop_index("uq_usage_records_submission", table_name="usage_records")
    op.execute("DELETE FROM usage_records WHERE rescore_id IS NOT NULL")
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_constraint("fk_usage_records_rescore_id", type_="foreignkey")
        batch_op.drop_constraint("uq_usage_records_rescore_id", type_="unique")
        batch_op.drop_column("rescore_id")
        batch_op.create_unique_constraint("usage_records_analysis_id_key", ["analysis_id"])
    op.drop_table("analysis_results")
    op.drop_index(op.f("ix_rescores_user_id"), table_name="rescores")
    op.drop_index("ix_rescores_run_status", table_name="rescores")
    op.drop_index("ix_rescores_analysis_created", table_name="rescores")
    op.drop_table("rescores")
    op.drop_index(op.f("ix_rescore_runs_user_id"), table_name="rescore_runs")
    op.drop_index("ix_rescore_runs_scope_created", table_name="rescore_runs")
    op.drop_table("rescore_runs")
